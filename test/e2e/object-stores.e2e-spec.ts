import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  binaryParser,
  expectNoLocations,
  md5,
  storeFiles,
  storeFilesOf,
  waitFor,
} from '../support/image-assertions.js';
import { createImage, metaHeaders } from '../support/image-builder.js';
import {
  chunksOf,
  openUpload,
  portOf,
  rawRequest,
  slowBody,
} from '../support/raw-http.js';
import { createTestApp, type TestApp } from '../support/test-app.js';

const missing = [
  'SWIFT_AUTH_URL',
  'SWIFT_USER',
  'SWIFT_KEY',
  'S3_ENDPOINT',
  'S3_REGION',
  'S3_ACCESS_KEY_ID',
  'S3_SECRET_ACCESS_KEY',
].filter((name) => !process.env[name]);
if (missing.length > 0) {
  throw new Error(
    `${missing.join(', ')} not set: the vitest global setup starts Swift+S3 (test/support/global-setup.ts)`,
  );
}
const env = process.env as Record<string, string>;
const MiB = 1024 * 1024;
const PART_SIZE = 5 * MiB;
const CHUNK_SIZE = MiB;

type StoreName = 'swift' | 's3';

/** Both object stores, on a container and a bucket of their own. */
function storeEnv(container: string, bucket: string): Record<string, string> {
  return {
    SWIFT_STORE_AUTH_URL: env.SWIFT_AUTH_URL,
    SWIFT_STORE_USER: env.SWIFT_USER,
    SWIFT_STORE_KEY: env.SWIFT_KEY,
    SWIFT_STORE_CONTAINER: container,
    SWIFT_STORE_LARGE_OBJECT_SIZE: String(CHUNK_SIZE),
    SWIFT_STORE_LARGE_OBJECT_CHUNK_SIZE: String(CHUNK_SIZE),
    S3_STORE_ENDPOINT: env.S3_ENDPOINT,
    S3_STORE_REGION: env.S3_REGION,
    S3_STORE_BUCKET: bucket,
    S3_STORE_ACCESS_KEY: env.S3_ACCESS_KEY_ID,
    S3_STORE_SECRET_KEY: env.S3_SECRET_ACCESS_KEY,
    S3_STORE_FORCE_PATH_STYLE: 'true',
    S3_STORE_PART_SIZE: String(PART_SIZE),
  };
}

/** Plain Swift API calls, independent of the stores under test. */
async function swift(method: string, path: string): Promise<Response> {
  const auth = await fetch(env.SWIFT_AUTH_URL, {
    headers: { 'x-auth-user': env.SWIFT_USER, 'x-auth-key': env.SWIFT_KEY },
  });
  expect(auth.status).toBe(200);
  return fetch(`${auth.headers.get('x-storage-url')}/${path}`, {
    method,
    headers: { 'x-auth-token': auth.headers.get('x-auth-token')! },
  });
}

async function listContainer(container: string): Promise<string[]> {
  const res = await swift(
    'GET',
    `${encodeURIComponent(container)}?format=json`,
  );
  if (res.status === 404 || res.status === 204) return [];
  expect(res.status).toBe(200);
  return ((await res.json()) as { name: string }[]).map((o) => o.name);
}

async function removeContainer(container: string): Promise<void> {
  for (const name of await listContainer(container)) {
    await swift(
      'DELETE',
      `${encodeURIComponent(container)}/${encodeURIComponent(name)}`,
    );
  }
  const res = await swift('DELETE', encodeURIComponent(container));
  expect([204, 404]).toContain(res.status);
}

/**
 * Everything a store holds for an image: objects and Swift segments, and for
 * S3 the parts and unfinished uploads Swift's s3api keeps in `<bucket>+segments`.
 */
async function storedFor(container: string, id: string): Promise<string[]> {
  const names = [
    ...(await listContainer(container)),
    ...(await listContainer(`${container}+segments`)).map(
      (n) => `+segments/${n}`,
    ),
  ];
  return names.filter((name) => name.includes(id));
}

async function statusOf(t: TestApp, id: string): Promise<string> {
  const res = await request(t.http).head(`/v1/images/${id}`);
  return res.status === 200
    ? String(res.headers['x-image-meta-status'])
    : `HTTP ${res.status}`;
}

async function download(t: TestApp, id: string) {
  return request(t.http)
    .get(`/v1/images/${id}`)
    .buffer(true)
    .parse(binaryParser);
}

function upload(
  t: TestApp,
  data: Buffer,
  headers: Record<string, string> = {},
) {
  return request(t.http)
    .post('/v1/images')
    .set(metaHeaders())
    .set(headers)
    .set('content-type', 'application/octet-stream')
    .send(data);
}

describe.each<[StoreName]>([['swift'], ['s3']])(
  'DEFAULT_STORE=%s',
  (storeName) => {
    const suffix = randomUUID().slice(0, 8);
    const containers = {
      swift: `glance-e2e-${suffix}-swift`,
      s3: `glance-e2e-${suffix}-s3`,
    };
    const mine = containers[storeName];
    const other: StoreName = storeName === 'swift' ? 's3' : 'swift';
    let t: TestApp;
    let port: number;

    beforeAll(async () => {
      t = await createTestApp({
        ...storeEnv(containers.swift, containers.s3),
        DEFAULT_STORE: storeName,
        EXTERNAL_SOURCE_ALLOWLIST: '127.0.0.1/32',
      });
      port = await portOf(t);
    });
    afterAll(async () => {
      await t?.close();
      for (const name of Object.values(containers)) {
        await removeContainer(name);
        await removeContainer(`${name}+segments`);
      }
    });

    it('stores a small image as one object, serves it and deletes it', async () => {
      const data = randomBytes(512 * 1024 + 1);
      // glanceclient sends the size it knows; Glance's stores segment only unknown or large sizes.
      const res = await upload(t, data, {
        'x-image-meta-size': String(data.length),
      });
      expect(res.status).toBe(201);
      const id = res.body.image.id;
      expect(res.body.image).toMatchObject({
        status: 'active',
        size: data.length,
        checksum: md5(data),
      });
      expectNoLocations(res.body);
      expect(res.text).not.toContain(`${storeName}://`);
      expect(await storedFor(mine, id)).toEqual([id]);
      expect(storeFilesOf(t, id)).toEqual([]);

      const head = await request(t.http).head(`/v1/images/${id}`);
      expect(head.headers).toMatchObject({
        'x-image-meta-status': 'active',
        'x-image-meta-size': String(data.length),
        'x-image-meta-checksum': md5(data),
      });
      expect(JSON.stringify(head.headers)).not.toContain(`${storeName}://`);
      const got = await download(t, id);
      expect(got.status).toBe(200);
      expect(md5(got.body as Buffer)).toBe(md5(data));

      expect((await request(t.http).delete(`/v1/images/${id}`)).status).toBe(
        200,
      );
      expect(await storedFor(mine, id)).toEqual([]);
      expect((await download(t, id)).status).toBe(404);
    });

    it('stores a 3 MiB image of announced size, segmented when above the Swift large-object size', async () => {
      const data = randomBytes(3 * MiB + 1);
      const res = await upload(t, data, {
        'x-image-meta-size': String(data.length),
      });
      expect(res.status).toBe(201);
      const id = res.body.image.id;
      const pieces = (await storedFor(mine, id)).filter((n) => n !== id);
      // Swift: 4 segments of at most 1 MiB; S3: one object, below the 5 MiB part size.
      expect(pieces.length).toBe(storeName === 'swift' ? 4 : 0);
      const head = await request(t.http).head(`/v1/images/${id}`);
      expect(head.headers['x-image-meta-checksum']).toBe(md5(data));
      expect(md5((await download(t, id)).body as Buffer)).toBe(md5(data));
      await request(t.http).delete(`/v1/images/${id}`).expect(200);
      expect(await storedFor(mine, id)).toEqual([]);
    });

    it(`stores a chunked upload larger than the ${storeName === 'swift' ? 'segment' : 'part'} size in pieces and deletes them all`, async () => {
      const chunks = Array.from({ length: 11 }, () => randomBytes(MiB));
      chunks.push(randomBytes(12_345));
      const data = Buffer.concat(chunks);
      const res = await rawRequest(port, {
        method: 'POST',
        path: '/v1/images',
        headers: {
          ...metaHeaders(),
          'content-type': 'application/octet-stream',
        },
        body: slowBody(chunks, 0),
      });
      expect(res.status).toBe(201);
      const image = JSON.parse(res.body.toString()).image;
      expect(image).toMatchObject({
        status: 'active',
        size: data.length,
        checksum: md5(data),
      });
      const pieces = (await storedFor(mine, image.id)).filter(
        (n) => n !== image.id,
      );
      // Swift: 12 segments of 1 MiB; S3: 3 parts of 5 MiB (s3api keeps them as segments).
      expect(pieces.length).toBe(storeName === 'swift' ? 12 : 3);

      const got = await download(t, image.id);
      expect(got.headers['content-length']).toBe(String(data.length));
      expect(md5(got.body as Buffer)).toBe(md5(data));

      expect(
        (await request(t.http).delete(`/v1/images/${image.id}`)).status,
      ).toBe(200);
      expect(await storedFor(mine, image.id)).toEqual([]);
    });

    it('honours x-image-meta-store: file over the default store', async () => {
      const data = randomBytes(64 * 1024);
      const res = await upload(t, data, { 'x-image-meta-store': 'file' });
      expect(res.status).toBe(201);
      const id = res.body.image.id;
      expect(storeFilesOf(t, id)).toEqual([id]);
      expect(await storedFor(mine, id)).toEqual([]);
      expect(md5((await download(t, id)).body as Buffer)).toBe(md5(data));
      await request(t.http).delete(`/v1/images/${id}`).expect(200);
      expect(storeFilesOf(t, id)).toEqual([]);
    });

    it(`honours x-image-meta-store: ${other} over the default store`, async () => {
      const data = randomBytes(64 * 1024);
      const res = await upload(t, data, {
        'x-image-meta-store': other,
        'x-image-meta-size': String(data.length),
      });
      expect(res.status).toBe(201);
      const id = res.body.image.id;
      expect(await storedFor(containers[other], id)).toEqual([id]);
      expect(await storedFor(mine, id)).toEqual([]);
      expect(md5((await download(t, id)).body as Buffer)).toBe(md5(data));
      await request(t.http).delete(`/v1/images/${id}`).expect(200);
      expect(await storedFor(containers[other], id)).toEqual([]);
    });

    it.each([
      ['nowhere', 'HTTP 404'],
      // Known but read-only: the image was already reserved, and must not stay queued.
      ['http', 'killed'],
    ])(
      'refuses x-image-meta-store: %s with 400 and stores nothing (image: %s)',
      async (store, after) => {
        for (const source of ['body', 'copy-from']) {
          const id = randomUUID();
          const headers = {
            'x-image-meta-store': store,
            'x-image-meta-id': id,
          };
          const res =
            source === 'body'
              ? await upload(t, Buffer.from('data'), headers)
              : await request(t.http)
                  .post('/v1/images')
                  .set(metaHeaders())
                  .set(headers)
                  .set('x-glance-api-copy-from', 'http://127.0.0.1:1/img');
          expect({ source, status: res.status }).toEqual({
            source,
            status: 400,
          });
          expect(await statusOf(t, id)).toBe(after);
          expect(await storedFor(mine, id)).toEqual([]);
          expect(storeFilesOf(t, id)).toEqual([]);
        }
      },
    );

    it('copies an external source into the store', async () => {
      const data = randomBytes(3 * MiB + 3);
      const server = http.createServer((req, res) => {
        res.writeHead(200, { 'content-length': String(data.length) });
        res.end(req.method === 'HEAD' ? undefined : data);
      });
      await new Promise<void>((resolve) =>
        server.listen(0, '127.0.0.1', resolve),
      );
      try {
        const { port: srcPort } = server.address() as AddressInfo;
        const res = await request(t.http)
          .post('/v1/images')
          .set(metaHeaders())
          .set('x-glance-api-copy-from', `http://127.0.0.1:${srcPort}/img`);
        expect(res.status).toBe(201);
        const id = res.body.image.id;
        await waitFor(
          async () => (await statusOf(t, id)) === 'active',
          'the copy',
          10_000,
        );
        expect((await storedFor(mine, id)).length).toBeGreaterThan(0);
        const got = await download(t, id);
        expect(md5(got.body as Buffer)).toBe(md5(data));
        await request(t.http).delete(`/v1/images/${id}`).expect(200);
        expect(await storedFor(mine, id)).toEqual([]);
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it('kills the image and leaves no segments or parts when the client goes away mid-upload', async () => {
      const id = randomUUID();
      const req = openUpload(port, metaHeaders({ id }));
      // Past one S3 part (5 MiB) and several Swift segments (1 MiB).
      for (const chunk of chunksOf(7 * MiB, 7)) req.write(chunk);
      await waitFor(
        async () => (await storedFor(mine, id)).length > 0,
        'the first pieces to be stored',
        10_000,
      );
      req.socket?.destroy();
      req.destroy();

      await waitFor(
        async () => (await statusOf(t, id)) === 'killed',
        'the image to be killed',
        10_000,
      );
      await waitFor(
        async () => (await storedFor(mine, id)).length === 0,
        'the pieces to be removed',
        10_000,
      );
      expect(await statusOf(t, id)).toBe('killed');
      expect((await download(t, id)).status).toBe(404);
    });
  },
);

describe.each<[StoreName]>([['swift'], ['s3']])(
  'DEFAULT_STORE=%s when the store is down',
  (storeName) => {
    let t: TestApp;

    beforeAll(async () => {
      const down = storeEnv('glance-e2e-down', 'glance-e2e-down');
      if (storeName === 'swift')
        down.SWIFT_STORE_AUTH_URL = 'http://127.0.0.1:1/auth/v1.0';
      else down.S3_STORE_ENDPOINT = 'http://127.0.0.1:1';
      t = await createTestApp({ ...down, DEFAULT_STORE: storeName });
    });
    afterAll(async () => t?.close());

    it('answers 503 to an upload and leaves the image killed with no data', async () => {
      const id = randomUUID();
      const res = await upload(t, randomBytes(256 * 1024), {
        'x-image-meta-id': id,
      });
      expect({ status: res.status, text: res.text }).toMatchObject({
        status: 503,
      });
      expect(res.text).toContain('image store is unavailable');
      expect(res.text).not.toContain('127.0.0.1');
      expect(await statusOf(t, id)).toBe('killed');
      expect((await download(t, id)).status).toBe(404);
      expect(storeFiles(t)).toEqual([]);
    });

    it('still reserves images and stores to the file store on request', async () => {
      const reserved = await createImage(t, { name: 'reserved' });
      expect(reserved.status).toBe('queued');
      const res = await upload(t, Buffer.from('local'), {
        'x-image-meta-store': 'file',
      });
      expect(res.status).toBe(201);
      expect(storeFilesOf(t, res.body.image.id)).toEqual([res.body.image.id]);
    });
  },
);
