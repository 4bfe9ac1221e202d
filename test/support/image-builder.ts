import request from 'supertest';
import type { TestApp } from './test-app.js';

export interface ImageSpec {
  name?: string;
  disk_format?: string;
  container_format?: string;
  is_public?: boolean;
  protected?: boolean;
  size?: number;
  id?: string;
  properties?: Record<string, string>;
  data?: Buffer;
  headers?: Record<string, string>;
}

/** x-image-meta-* headers for a spec (defaults: raw/bare, named). */
export function metaHeaders(spec: ImageSpec = {}): Record<string, string> {
  const h: Record<string, string> = {
    'x-image-meta-name': spec.name ?? 'test-image',
    'x-image-meta-disk_format': spec.disk_format ?? 'raw',
    'x-image-meta-container_format': spec.container_format ?? 'bare',
  };
  if (spec.is_public !== undefined) h['x-image-meta-is_public'] = String(spec.is_public);
  if (spec.protected !== undefined) h['x-image-meta-protected'] = String(spec.protected);
  if (spec.size !== undefined) h['x-image-meta-size'] = String(spec.size);
  if (spec.id !== undefined) h['x-image-meta-id'] = spec.id;
  for (const [k, v] of Object.entries(spec.properties ?? {})) h[`x-image-meta-property-${k}`] = v;
  return { ...h, ...spec.headers };
}

/** Creates an image through the API; uploads `data` when given. Returns the response body's image. */
export async function createImage(
  t: TestApp,
  spec: ImageSpec = {},
  auth: Record<string, string> = {},
): Promise<Record<string, any>> {
  const req = request(t.http).post('/v1/images').set(auth).set(metaHeaders(spec));
  const res = spec.data
    ? await req.set('Content-Type', 'application/octet-stream').send(spec.data)
    : await req;
  if (res.status !== 201) {
    throw new Error(`create failed: ${res.status} ${res.text}`);
  }
  return res.body.image;
}
