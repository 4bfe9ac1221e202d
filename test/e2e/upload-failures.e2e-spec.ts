import { execFileSync } from 'node:child_process';
import type { Server } from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectError,
  md5,
  storeFiles,
  storeFilesOf,
  waitFor,
} from '../support/image-assertions.js';
import { createImage, metaHeaders } from '../support/image-builder.js';
import {
  chunksOf,
  hangUpEarly,
  openUpload,
  portOf,
  rawRequest,
  sendAllThenRead,
  slowBody,
} from '../support/raw-http.js';
import { createTestApp, type TestApp } from '../support/test-app.js';
import { mountTmpfs } from '../support/tmpfs.js';

const CAP = 1000;

async function statusOf(t: TestApp, id: string): Promise<string | undefined> {
  const res = await request(t.http).head(`/v1/images/${id}`);
  return res.status === 200
    ? res.headers['x-image-meta-status']
    : `HTTP ${res.status}`;
}

describe('uploads that fail (IMAGE_SIZE_CAP=1000)', () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await createTestApp({ IMAGE_SIZE_CAP: String(CAP) });
    port = await portOf(t);
  });
  afterAll(async () => t?.close());

  describe('size cap', () => {
    it('refuses a declared x-image-meta-size over the cap before creating anything', async () => {
      const id = randomUUID();
      const res = await request(t.http)
        .post('/v1/images')
        .set(metaHeaders({ id, size: CAP + 1 }));
      expectError(
        res,
        400,
        `Denying attempt to upload image larger than ${CAP} bytes.`,
      );
      expect((await request(t.http).head(`/v1/images/${id}`)).status).toBe(404);
    });

    it('refuses a Content-Length over the cap before reading the body', async () => {
      const id = randomUUID();
      const res = await rawRequest(port, {
        method: 'POST',
        path: '/v1/images',
        headers: {
          ...metaHeaders({ id }),
          'content-type': 'application/octet-stream',
          'content-length': String(CAP + 1),
        },
        body: Buffer.alloc(CAP + 1, 1),
      });
      expect(res.status).toBe(400);
      expect(res.body.toString()).toContain(
        `Denying attempt to upload image larger than ${CAP} bytes.`,
      );
      expect((await request(t.http).head(`/v1/images/${id}`)).status).toBe(404);
      expect(storeFilesOf(t, id)).toEqual([]);
    });

    it('refuses a Content-Length over the cap on an update too', async () => {
      const image = await createImage(t, { name: 'capped-update' });
      const res = await rawRequest(port, {
        method: 'PUT',
        path: `/v1/images/${image.id}`,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(CAP + 1),
        },
        body: Buffer.alloc(CAP + 1, 1),
      });
      expect(res.status).toBe(400);
      expect(res.body.toString()).toContain(`larger than ${CAP} bytes`);
      expect(await statusOf(t, image.id)).toBe('queued');
    });

    it('accepts a chunked body of exactly the cap', async () => {
      const id = randomUUID();
      const chunks = chunksOf(CAP, 4);
      const res = await rawRequest(port, {
        method: 'POST',
        path: '/v1/images',
        headers: {
          ...metaHeaders({ id }),
          'content-type': 'application/octet-stream',
        },
        body: slowBody(chunks, 1),
      });
      expect(res.status).toBe(201);
      const image = JSON.parse(res.body.toString()).image;
      expect(image).toMatchObject({
        id,
        status: 'active',
        size: CAP,
        checksum: md5(Buffer.concat(chunks)),
      });
      expect(storeFilesOf(t, id)).toEqual([id]);
    });

    // The client stops writing once it has crossed the cap and waits for the answer:
    // bytes still in flight when the server closes would reset the connection.
    it('answers 413 to a chunked body that grows over the cap, kills the image and leaves no file', async () => {
      const id = randomUUID();
      const body = new PassThrough();
      const answer = rawRequest(port, {
        method: 'POST',
        path: '/v1/images',
        headers: {
          ...metaHeaders({ id }),
          'content-type': 'application/octet-stream',
        },
        body,
      });
      body.write(Buffer.alloc(600, 1));
      body.write(Buffer.alloc(600, 2));
      const res = await answer;
      body.end();
      expect(res.status).toBe(413);
      expect(res.body.toString()).toContain(
        `Denying attempt to upload image larger than ${CAP} bytes.`,
      );
      expect(await statusOf(t, id)).toBe('killed');
      expect(storeFilesOf(t, id)).toEqual([]);
      expect(storeFiles(t).filter((f) => f.endsWith('.part'))).toEqual([]);
    });

    it('lets a client that sends everything first (like python-requests) read the 413', async () => {
      const id = randomUUID();
      async function* body() {
        for (let i = 0; i < 32; i++) yield Buffer.alloc(256 * 1024, i);
      }
      const res = await sendAllThenRead(
        port,
        {
          method: 'POST',
          path: '/v1/images',
          headers: { ...metaHeaders({ id }), 'content-type': 'application/octet-stream' },
        },
        body(),
      );
      expect(res.status).toBe(413);
      expect(res.text).toContain(`Denying attempt to upload image larger than ${CAP} bytes.`);
      expect(await statusOf(t, id)).toBe('killed');
      expect(storeFilesOf(t, id)).toEqual([]);
    });

    it('answers 413 to a chunked PUT over the cap and kills the queued image', async () => {
      const image = await createImage(t, { name: 'capped-put' });
      const body = new PassThrough();
      const answer = rawRequest(port, {
        method: 'PUT',
        path: `/v1/images/${image.id}`,
        headers: { 'content-type': 'application/octet-stream' },
        body,
      });
      body.write(Buffer.alloc(CAP + 1, 3));
      const res = await answer;
      body.end();
      expect(res.status).toBe(413);
      expect(res.body.toString()).toContain(`larger than ${CAP} bytes`);
      expect(await statusOf(t, image.id)).toBe('killed');
      expect(storeFilesOf(t, image.id)).toEqual([]);
    });
  });

  describe('client disconnect', () => {
    it('kills the image and removes its partial data when the client goes away mid-upload', async () => {
      const id = randomUUID();
      const req = openUpload(port, metaHeaders({ id }));
      req.write(Buffer.alloc(300, 7));
      // The image is saving once the server started to consume the body.
      await waitFor(
        async () => (await statusOf(t, id)) === 'saving',
        'the upload to start',
      );
      req.write(Buffer.alloc(100, 8));
      await new Promise((r) => setTimeout(r, 20));
      req.socket?.destroy();
      req.destroy();

      await waitFor(
        async () => (await statusOf(t, id)) === 'killed',
        'the image to be killed',
      );
      await waitFor(
        () => storeFilesOf(t, id).length === 0,
        'the partial file to be removed',
      );
      const listed = await request(t.http).get(
        '/v1/images/detail?is_public=None',
      );
      expect(listed.body.images.map((i: { id: string }) => i.id)).not.toContain(
        id,
      );
      expect((await request(t.http).get(`/v1/images/${id}`)).status).toBe(404);
    });
    // A client gone before the upload starts (its close fired during the
    // database calls that precede the body) must end like a mid-body one.
    it.each(['POST', 'PUT'])(
      'kills the image and leaves no file when the client hangs up right after the head (%s)',
      async (method) => {
        const ids: string[] = [];
        for (let n = 0; n < 4; n++) {
          const id =
            method === 'POST'
              ? randomUUID()
              : (await createImage(t, { name: 'hang-up' })).id;
          ids.push(id);
          await hangUpEarly(port, {
            method,
            path: method === 'POST' ? '/v1/images' : `/v1/images/${id}`,
            headers: method === 'POST' ? metaHeaders({ id }) : {},
            contentLength: CAP,
            sent: Buffer.alloc(400, 9),
          });
        }
        for (const id of ids) {
          await waitFor(
            async () => (await statusOf(t, id)) === 'killed',
            `image ${id} to be killed`,
          );
          await waitFor(
            () => storeFilesOf(t, id).length === 0,
            `the partial file of ${id} to be removed`,
          );
        }
      },
    );
  });

  describe('delete during an upload', () => {
    it('stops the upload (412), and leaves the image deleted with no data', async () => {
      const id = randomUUID();
      const body = new PassThrough();
      const upload = rawRequest(port, {
        method: 'POST',
        path: '/v1/images',
        headers: {
          ...metaHeaders({ id }),
          'content-type': 'application/octet-stream',
        },
        body,
      });
      body.write(Buffer.alloc(300, 4));
      await waitFor(
        async () => (await statusOf(t, id)) === 'saving',
        'the upload to start',
      );
      expect((await request(t.http).delete(`/v1/images/${id}`)).status).toBe(
        200,
      );
      const res = await upload;
      body.end();
      expect(res.status).toBe(412);
      expect(res.body.toString()).toContain(
        `Image ${id} could not be found after upload`,
      );
      expect(await statusOf(t, id)).toBe('deleted');
      await waitFor(
        () => storeFilesOf(t, id).length === 0,
        'the partial file to be removed',
      );
    });
  });

  describe('delete racing the activation of an upload', () => {
    // The delete reads the image while it is saving; the upload may activate
    // it before the delete lands. Whichever order: no bytes may outlive it.
    it('never leaves bytes of a deleted image in the store (40 races)', async () => {
      const outcomes = new Set<number>();
      for (let n = 0; n < 40; n++) {
        const image = await createImage(t, { name: `race-${n}` });
        const body = new PassThrough();
        const upload = rawRequest(port, {
          method: 'PUT',
          path: `/v1/images/${image.id}`,
          headers: { 'content-type': 'application/octet-stream' },
          body,
        });
        body.write(Buffer.alloc(500, n));
        await waitFor(
          async () => (await statusOf(t, image.id)) === 'saving',
          'the upload to start',
        );
        body.end(Buffer.alloc(100, n));
        await new Promise((r) => setTimeout(r, n % 4));
        const deleted = await request(t.http).delete(`/v1/images/${image.id}`);
        const uploaded = await upload;
        expect(deleted.status).toBe(200);
        expect([200, 412]).toContain(uploaded.status);
        outcomes.add(uploaded.status);
        expect(await statusOf(t, image.id)).toBe('deleted');
        await waitFor(
          () => storeFilesOf(t, image.id).length === 0,
          `no data left for deleted image ${image.id}`,
          2000,
        );
      }
    });
  });

  describe('concurrent uploads to one queued image', () => {
    it('lets exactly one PUT win; the other gets 409 and leaves no data', async () => {
      const image = await createImage(t, { name: 'raced' });
      const data = [Buffer.alloc(600, 0x41), Buffer.alloc(700, 0x42)];
      const bodies = [new PassThrough(), new PassThrough()];
      const answers = bodies.map((body) =>
        rawRequest(port, {
          method: 'PUT',
          path: `/v1/images/${image.id}`,
          headers: { 'content-type': 'application/octet-stream' },
          body,
        }),
      );
      // Both requests are in flight with part of their bytes sent before either can finish.
      bodies.forEach((body, n) => body.write(data[n].subarray(0, 100)));
      const first = await Promise.race(
        answers.map((a, n) => a.then((res) => ({ res, n }))),
      );
      expect(first.res.status).toBe(409);
      expect(first.res.body.toString()).toMatch(
        /Cannot upload to an unqueued image|Image operation conflicts/,
      );
      const w = 1 - first.n;
      bodies[first.n].end();
      bodies[w].end(data[w].subarray(100));
      const won = await answers[w];
      expect(won.status).toBe(200);
      expect(JSON.parse(won.body.toString()).image).toMatchObject({
        status: 'active',
        size: data[w].length,
        checksum: md5(data[w]),
      });

      const head = await request(t.http).head(`/v1/images/${image.id}`);
      expect(head.headers['x-image-meta-status']).toBe('active');
      expect(head.headers['x-image-meta-checksum']).toBe(md5(data[w]));
      expect(storeFilesOf(t, image.id)).toEqual([image.id]);
      const dl = await rawRequest(port, {
        method: 'GET',
        path: `/v1/images/${image.id}`,
      });
      expect(dl.body.equals(data[w])).toBe(true);
    });
  });
});


const fullStoreDir = mountTmpfs('1m', 'glance-full-store-');

// A store that runs out of space needs a small filesystem: a tmpfs, which
// only root may mount (CI runs as root; a developer's non-root run skips).
describe.runIf(fullStoreDir !== null)('a file store that runs out of space (1 MiB tmpfs)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ FILESYSTEM_STORE_DATADIR: fullStoreDir! });
  });
  afterAll(async () => {
    await t?.close();
    execFileSync('umount', [fullStoreDir!]);
    rmSync(fullStoreDir!, { recursive: true, force: true });
  });

  it.each([
    ['with a Content-Length', false],
    ['chunked', true],
  ])('answers 413 to an upload %s, kills the image and leaves no bytes', async (_name, chunked) => {
    const id = randomUUID();
    const data = randomBytes(2 * 1024 * 1024);
    const res = await rawRequest(await portOf(t), {
      method: 'POST',
      path: '/v1/images',
      headers: {
        ...metaHeaders({ id }),
        'Content-Type': 'application/octet-stream',
        ...(chunked ? { 'Transfer-Encoding': 'chunked' } : { 'Content-Length': String(data.length) }),
      },
      body: data,
    });
    expect(res.status).toBe(413);
    expect(res.body.toString()).toContain('Image storage media is full');
    expect(await statusOf(t, id)).toBe('killed');
    expect(readdirSync(fullStoreDir!).filter((f) => f.startsWith(id))).toEqual([]);
    // The space is free again: a small image still fits.
    const small = await createImage(t, { data: Buffer.from('still room') });
    expect(small.status).toBe('active');
    expect((await request(t.http).delete(`/v1/images/${small.id}`)).status).toBe(200);
    expect(readdirSync(fullStoreDir!)).toEqual([]);
  });
});

describe('connection timeouts (CLIENT_SOCKET_TIMEOUT=1)', () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await createTestApp({ CLIENT_SOCKET_TIMEOUT: '1' });
    port = await portOf(t);
  });
  afterAll(async () => t?.close());

  it('puts no limit on a whole request (Node would cut it after 5 minutes)', () => {
    expect((t.http as Server).requestTimeout).toBe(0);
  });

  it('accepts an upload that takes longer than the timeout while it keeps moving', async () => {
    const chunks = chunksOf(64 * 1024, 8, 0x62);
    const res = await rawRequest(port, {
      method: 'POST',
      path: '/v1/images',
      headers: { ...metaHeaders({}), 'content-type': 'application/octet-stream' },
      body: slowBody(chunks, 300),
    });
    expect(res.status).toBe(201);
    expect(JSON.parse(res.body.toString()).image).toMatchObject({
      status: 'active',
      size: 64 * 1024,
    });
  });

  it('cuts an upload that goes silent, kills the image and removes its partial data', async () => {
    const id = randomUUID();
    const upload = openUpload(port, metaHeaders({ id }));
    upload.write(Buffer.alloc(128 * 1024, 1));
    await waitFor(async () => (await statusOf(t, id)) === 'saving', 'the upload to start');
    await waitFor(
      async () => (await statusOf(t, id)) === 'killed',
      'the silent upload to be cut',
      5000,
    );
    await waitFor(() => storeFilesOf(t, id).length === 0, 'the partial data to be removed');
    upload.destroy();
  });
});
