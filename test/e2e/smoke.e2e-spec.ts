import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashWorkerPool } from '../../src/images/upload/hash-worker-pool.js';
import { createImage } from '../support/image-builder.js';
import { createTestApp, type TestApp } from '../support/test-app.js';

describe('smoke', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  it('creates, lists and downloads an image', async () => {
    const data = Buffer.from('hello world');
    const image = await createImage(t, { data, is_public: true });
    expect(image.status).toBe('active');
    const list = await request(t.http).get('/v1/images/detail');
    expect(list.body.images.map((i: { id: string }) => i.id)).toContain(image.id);
    const dl = await request(t.http).get(`/v1/images/${image.id}`).buffer(true).parse((res, cb) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => cb(null, Buffer.concat(chunks)));
    });
    expect(dl.status).toBe(200);
    expect(dl.body.equals(data)).toBe(true);
  });

  it("keeps a user property called location while the store location stays hidden", async () => {
    const image = await createImage(t, {
      data: Buffer.from('x'),
      properties: { location: 'rack-4' },
    });
    expect(image.properties).toEqual({ location: 'rack-4' });
    expect(image).not.toHaveProperty('location');
    const head = await request(t.http).head(`/v1/images/${image.id}`);
    expect(head.headers['x-image-meta-property-location']).toBe('rack-4');
    expect(head.headers['x-image-meta-location']).toBeUndefined();
    const detail = await request(t.http).get('/v1/images/detail?is_public=None');
    const listed = detail.body.images.find((i: { id: string }) => i.id === image.id);
    expect(listed.properties).toEqual({ location: 'rack-4' });
    expect(JSON.stringify(detail.body)).not.toContain('file://');
  });

  it('starts the hash worker with the first upload and stops it when the app closes', async () => {
    const own = await createTestApp({ HASH_WORKERS: '2' });
    const pool = own.app.get(HashWorkerPool);
    try {
      expect(pool.runningWorkers).toBe(0);
      await createImage(own, { data: Buffer.from('abc') });
      expect(pool.runningWorkers).toBe(2);
    } finally {
      await own.close();
    }
    expect(pool.closed).toBe(true);
    expect(pool.runningWorkers).toBe(0);
  });
});
