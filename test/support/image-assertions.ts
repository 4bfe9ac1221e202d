import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import type { Response } from 'supertest';
import { expect } from 'vitest';
import type { TestApp } from './test-app.js';

export function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

export function sha512(data: Buffer): string {
  return createHash('sha512').update(data).digest('hex');
}

/** Names in the file-store folder (partial `.part` files included). */
export function storeFiles(t: TestApp): string[] {
  return existsSync(t.storeDir) ? readdirSync(t.storeDir).sort() : [];
}

/** Store files that belong to image `id` (the final file or its `.part`). */
export function storeFilesOf(t: TestApp, id: string): string[] {
  return storeFiles(t).filter((f) => f === id || f.startsWith(`${id}.`));
}

/** Polls `check` until it returns true; fails after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A header value carrying `text` as UTF-8 bytes (Node sends header strings as latin1). */
export function utf8Header(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** Decodes a received header whose bytes are UTF-8 (Node hands them over as latin1). */
export function fromUtf8Header(
  value: string | string[] | undefined,
): string | undefined {
  if (value === undefined) return undefined;
  const v = Array.isArray(value) ? value[0] : value;
  return Buffer.from(v, 'latin1').toString('utf8');
}

const LOCATION_KEYS = new Set(['location', 'location_data', 'locations']);

/** Fails when a body (parsed JSON or text) exposes store locations anywhere. */
export function expectNoLocations(body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body ?? null);
  expect(text).not.toContain('file://');
  const walk = (value: unknown, path: string): void => {
    if (Array.isArray(value))
      return value.forEach((v, i) => walk(v, `${path}[${i}]`));
    if (value === null || typeof value !== 'object') return;
    for (const [k, v] of Object.entries(value)) {
      expect(LOCATION_KEYS.has(k), `location key at ${path}.${k}`).toBe(false);
      walk(v, `${path}.${k}`);
    }
  };
  if (typeof body !== 'string') walk(body, '$');
}

/** Checks a supertest response's status and that its text includes `message`. */
export function expectError(
  res: Response,
  status: number,
  message: string | RegExp,
): void {
  expect({ status: res.status, text: res.text }).toMatchObject({ status });
  if (typeof message === 'string') expect(res.text).toContain(message);
  else expect(res.text).toMatch(message);
  expectNoLocations(res.text);
}

/** supertest parser collecting the raw body bytes (for downloads). */
export function binaryParser(
  res: Response,
  done: (err: Error | null, body: Buffer) => void,
): void {
  // In Node, superagent hands the parser the raw response stream.
  const stream = res as unknown as NodeJS.ReadableStream;
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => done(null, Buffer.concat(chunks)));
  stream.on('error', (err: Error) => done(err, Buffer.concat(chunks)));
}

/** Sleeps long enough for the next image to get a later created_at (millisecond timestamps). */
export function tick(ms = 3): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
