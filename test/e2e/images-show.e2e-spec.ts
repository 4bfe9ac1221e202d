import { randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, rmSync, truncateSync } from 'node:fs';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  binaryParser,
  expectError,
  md5,
  sha512,
} from '../support/image-assertions.js';
import { createImage } from '../support/image-builder.js';
import { portOf, rawRequest } from '../support/raw-http.js';
import { ADMIN, as, createTestApp, type TestApp } from '../support/test-app.js';

const A = as('tenant-a');
const B = as('tenant-b');

describe('HEAD and GET /v1/images/:id', () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await createTestApp();
    port = await portOf(t);
  });
  afterAll(async () => t?.close());

  const head = (id: string, auth: Record<string, string> = {}) =>
    request(t.http).head(`/v1/images/${id}`).set(auth);
  const download = (id: string, auth: Record<string, string> = {}) =>
    request(t.http)
      .get(`/v1/images/${id}`)
      .set(auth)
      .buffer(true)
      .parse(binaryParser);

  describe('an active image', () => {
    const data = randomBytes(10_000);
    let image: Record<string, any>;
    beforeAll(async () => {
      image = await createImage(
        t,
        {
          name: 'shown',
          disk_format: 'qcow2',
          container_format: 'ovf',
          protected: true,
          data,
          properties: { distro: 'ubuntu', 'os-version': '12.04' },
          headers: { 'x-image-meta-min_ram': '256' },
        },
        A,
      );
    });

    it('HEAD answers the metadata as x-image-meta-* headers', async () => {
      const res = await head(image.id, A);
      expect(res.status).toBe(200);
      expect(res.headers).toMatchObject({
        'x-image-meta-id': image.id,
        'x-image-meta-name': 'shown',
        'x-image-meta-disk_format': 'qcow2',
        'x-image-meta-container_format': 'ovf',
        'x-image-meta-size': String(data.length),
        'x-image-meta-checksum': md5(data),
        'x-image-meta-status': 'active',
        'x-image-meta-is_public': 'False',
        'x-image-meta-protected': 'True',
        'x-image-meta-deleted': 'False',
        'x-image-meta-min_ram': '256',
        'x-image-meta-min_disk': '0',
        'x-image-meta-owner': 'tenant-a',
        'x-image-meta-created_at': image.created_at,
        'x-image-meta-updated_at': expect.any(String),
        'x-image-meta-property-distro': 'ubuntu',
        'x-image-meta-property-os_version': '12.04',
        etag: md5(data),
      });
      expect(res.headers['x-image-meta-deleted_at']).toBeUndefined();
      expect(res.headers['x-image-meta-location']).toBeUndefined();
      expect(res.headers.location).toMatch(
        new RegExp(`^http://127\\.0\\.0\\.1:\\d+/v1/images/${image.id}$`),
      );
      expect(res.text ?? '').toBe('');
    });

    it('HEAD by another tenant of a private image is 404', async () => {
      const res = await head(image.id, B);
      expect(res.status).toBe(404);
      expect(res.headers['x-image-meta-name']).toBeUndefined();
    });

    it('GET streams the bytes with the metadata headers', async () => {
      const res = await download(image.id, A);
      expect(res.status).toBe(200);
      expect((res.body as Buffer).equals(data)).toBe(true);
      expect(res.headers['content-type']).toBe('application/octet-stream');
      expect(res.headers['content-length']).toBe(String(data.length));
      expect(res.headers.etag).toBe(md5(data));
      expect(res.headers.location).toMatch(
        new RegExp(`/v1/images/${image.id}$`),
      );
      expect(res.headers).toMatchObject({
        'x-image-meta-id': image.id,
        'x-image-meta-size': String(data.length),
        'x-image-meta-checksum': md5(data),
        'x-image-meta-protected': 'True',
        'x-image-meta-property-distro': 'ubuntu',
        'x-image-meta-os_hash_value': sha512(data),
      });
      expect(res.headers['x-image-meta-location']).toBeUndefined();
    });

    it('GET by another tenant of a private image is 404, not 403', async () => {
      const res = await request(t.http).get(`/v1/images/${image.id}`).set(B);
      expectError(res, 404, image.id);
    });

    it('an admin can read any image', async () => {
      expect((await download(image.id, ADMIN)).status).toBe(200);
      expect((await head(image.id, ADMIN)).status).toBe(200);
    });
  });

  it('serves public images to every tenant', async () => {
    const data = Buffer.from('public bytes');
    const image = await createImage(t, { is_public: true, data }, A);
    const res = await download(image.id, B);
    expect(res.status).toBe(200);
    expect((res.body as Buffer).equals(data)).toBe(true);
    expect((await head(image.id, B)).headers['x-image-meta-is_public']).toBe(
      'True',
    );
  });

  it('GET of an image that is not active is 404; HEAD still answers', async () => {
    const image = await createImage(t, { name: 'queued' }, A);
    const res = await request(t.http).get(`/v1/images/${image.id}`).set(A);
    expect(res.status).toBe(404);
    expect(res.text).toContain('not active');
    const meta = await head(image.id, A);
    expect(meta.status).toBe(200);
    expect(meta.headers['x-image-meta-status']).toBe('queued');
    expect(meta.headers.etag).toBeUndefined();
  });

  it('HEAD answers Content-Length: 0 (as Glance) and keeps the connection alive', async () => {
    const image = await createImage(t, { name: 'keep-alive' }, A);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    try {
      for (let i = 0; i < 3; i++) {
        const res = await new Promise<IncomingMessage>((resolve, reject) => {
          const req = httpRequest(
            { port, method: 'HEAD', path: `/v1/images/${image.id}`, headers: A, agent },
            (r) => {
              sockets.add(r.socket);
              r.resume();
              r.on('end', () => resolve(r));
            },
          );
          req.on('error', reject);
          req.end();
        });
        expect(res.statusCode).toBe(200);
        expect(res.headers['content-length']).toBe('0');
      }
      expect(sockets.size).toBe(1);
    } finally {
      agent.destroy();
    }
  });

  it('unknown and malformed ids are 404', async () => {
    const unknown = randomUUID();
    expectError(
      await request(t.http).get(`/v1/images/${unknown}`),
      404,
      unknown,
    );
    expect((await head(unknown)).status).toBe(404);
    expect(
      (await request(t.http).get('/v1/images/..%2F..%2Fetc%2Fpasswd')).status,
    ).toBe(404);
    expect(
      (await request(t.http).get(`/v1/images/${'x'.repeat(300)}`)).status,
    ).toBe(404);
  });

  it.each([
    '/v1/images/detail.xxx',
    '/v1/images.xxx',
    '/v1/images/new',
    '/v1/images/detail/extra',
  ])('GET %s is 404 (no collection format routes)', async (path) => {
    expect((await request(t.http).get(path)).status).toBe(404);
  });

  it('a size-0 active image downloads as an empty body', async () => {
    const image = await createImage(t, { size: 0 }, A);
    expect(image.status).toBe('active');
    const res = await download(image.id, A);
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe('0');
    expect((res.body as Buffer).length).toBe(0);
  });

  it('a deleted image is 404 for its owner; an admin still sees its metadata', async () => {
    const image = await createImage(t, { data: Buffer.from('bye') }, A);
    expect(
      (await request(t.http).delete(`/v1/images/${image.id}`).set(A)).status,
    ).toBe(200);
    expect((await head(image.id, A)).status).toBe(404);
    expect(
      (await request(t.http).get(`/v1/images/${image.id}`).set(A)).status,
    ).toBe(404);
    const meta = await head(image.id, ADMIN);
    expect(meta.status).toBe(200);
    expect(meta.headers['x-image-meta-status']).toBe('deleted');
    expect(meta.headers['x-image-meta-deleted']).toBe('True');
    expect(
      (await request(t.http).get(`/v1/images/${image.id}`).set(ADMIN)).status,
    ).toBe(404);
  });

  describe("data changed behind the service's back", () => {
    it('cuts the download short when the stored file was truncated', async () => {
      const data = randomBytes(200_000);
      const image = await createImage(t, { data }, A);
      truncateSync(join(t.storeDir, image.id), 100_000);
      const res = await rawRequest(port, {
        method: 'GET',
        path: `/v1/images/${image.id}`,
        headers: A,
      });
      expect(res.status).toBe(200);
      expect(res.headers['content-length']).toBe(String(data.length));
      expect(res.aborted).toBe(true);
      expect(res.body.length).toBeLessThan(data.length);
    });

    it('never sends a complete-looking body when the stored file grew', async () => {
      const data = randomBytes(5_000);
      const image = await createImage(t, { data }, A);
      appendFileSync(join(t.storeDir, image.id), Buffer.from('tampered'));
      const res = await rawRequest(port, {
        method: 'GET',
        path: `/v1/images/${image.id}`,
        headers: A,
      }).catch((err: Error) => err);
      if (res instanceof Error) {
        // The server dropped the connection before any response: the failure is visible.
        expect(res.message).toMatch(/socket hang up|ECONNRESET/);
        return;
      }
      expect(res.aborted).toBe(true);
      expect(res.body.length).toBeLessThan(data.length);
    });

    it('answers 404 when the stored file is gone', async () => {
      const image = await createImage(t, { data: Buffer.from('vanishing') }, A);
      rmSync(join(t.storeDir, image.id));
      const res = await request(t.http).get(`/v1/images/${image.id}`).set(A);
      expect(res.status).toBe(404);
      expect(res.text).not.toContain('file://');
    });
  });
});
