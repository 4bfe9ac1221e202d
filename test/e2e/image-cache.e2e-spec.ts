import { execFile, execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheMaintenanceService } from '../../src/cache/cache-maintenance.service.js';
import { ImageCache } from '../../src/cache/image-cache.service.js';
import { StoreRegistry } from '../../src/stores/store.registry.js';
import { countingBackend } from '../support/counting-backend.js';
import { binaryParser, md5, waitFor } from '../support/image-assertions.js';
import { createImage } from '../support/image-builder.js';
import { portOf, rawRequest, type RawResponse } from '../support/raw-http.js';
import { ADMIN, as, createTestApp, type TestApp } from '../support/test-app.js';
import { createTestDatabase, TEST_DATABASE } from '../support/test-database.js';
import { mountTmpfs } from '../support/tmpfs.js';

const run = promisify(execFile);
const KiB = 1024;
const MiB = 1024 * 1024;
const env = process.env as Record<string, string>;

function until(check: () => boolean | Promise<boolean>): Promise<void> {
  return waitFor(check, 'the cache state');
}

function cacheDir(): string {
  return mkdtempSync(join(tmpdir(), 'glance-cache-'));
}

async function download(
  t: TestApp,
  id: string,
  headers: Record<string, string> = ADMIN,
) {
  return request(t.http)
    .get(`/v1/images/${id}`)
    .set(headers)
    .buffer(true)
    .parse(binaryParser);
}

/**
 * `n` downloads of one image at once, each on its own connection (spread
 * over `ports`), each checked complete and byte-exact.
 */
async function downloadAtOnce(
  ports: number[],
  id: string,
  n: number,
  data: Buffer,
): Promise<RawResponse[]> {
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      rawRequest(ports[i % ports.length], {
        method: 'GET',
        path: `/v1/images/${id}`,
        headers: ADMIN,
      }),
    ),
  );
  for (const r of results) {
    expect(r.status).toBe(200);
    expect(r.aborted).toBe(false);
    expect(md5(r.body)).toBe(md5(data));
  }
  return results;
}

async function metric(t: TestApp, name: string): Promise<number> {
  const res = await request(t.http).get('/metrics');
  const line = res.text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

/** Removes the bytes behind the service's back: a later download can only come from the cache. */
async function dropFromStore(t: TestApp, id: string): Promise<void> {
  const res = await request(t.http).head(`/v1/images/${id}`).set(ADMIN);
  expect(res.status).toBe(200);
  const cache = t.app.get(ImageCache);
  await until(() => cache.isCached(id));
  const { ImageRegistry } =
    await import('../../src/registry/image.registry.js');
  const record = await t.app.get(ImageRegistry).get(id, true);
  await t.app
    .get(StoreRegistry)
    .forLocation(record!.location!)
    .delete(record!.location!);
}

/** Headers of a download, without those that differ per response. */
function stableHeaders(res: request.Response): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) {
    if (
      !['date', 'x-openstack-request-id', 'connection', 'keep-alive'].includes(
        k,
      )
    )
      out[k] = String(v);
    // supertest listens on a new port per request: compare the path.
    if (k === 'location') out[k] = new URL(String(v)).pathname;
  }
  return out;
}

async function remoteImage(
  t: TestApp,
  url: string,
  data: Buffer,
  headers = ADMIN,
): Promise<string> {
  const res = await request(t.http)
    .post('/v1/images')
    .set(headers)
    .set({
      'x-image-meta-name': 'remote',
      'x-image-meta-disk_format': 'raw',
      'x-image-meta-container_format': 'bare',
      'x-image-meta-location': url,
      'x-image-meta-size': String(data.length),
      'x-image-meta-checksum': md5(data),
      'x-image-meta-is_public': 'true',
    });
  if (res.status !== 201)
    throw new Error(`create failed: ${res.status} ${res.text}`);
  return res.body.image.id as string;
}

// The cache is node-local files plus its own SQLite index: it does not depend
// on the registry's database, so these run on SQLite only (the cross-node
// deletion test below also runs on PostgreSQL).
describe.runIf(TEST_DATABASE === 'sqlite')(
  'image cache on the file store',
  () => {
    let t: TestApp;
    let dir: string;
    beforeAll(async () => {
      dir = cacheDir();
      t = await createTestApp({
        IMAGE_CACHE_DIR: dir,
        EXTERNAL_SOURCE_ALLOWLIST: '127.0.0.1',
      });
    });
    afterAll(async () => {
      await t?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('serves the second download from the cache with the same headers, and counts the hit', async () => {
      const data = randomBytes(300 * KiB);
      const image = await createImage(t, {
        data,
        properties: { distro: 'debian' },
      });
      const first = await download(t, image.id);
      expect(first.status).toBe(200);
      expect(md5(first.body)).toBe(md5(data));
      await until(() => t.app.get(ImageCache).isCached(image.id));
      expect(existsSync(join(dir, image.id))).toBe(true);
      const hitsBefore = await metric(t, 'glance_image_cache_hits_total');
      await dropFromStore(t, image.id);
      const second = await download(t, image.id);
      expect(second.status).toBe(200);
      expect(md5(second.body)).toBe(md5(data));
      expect(stableHeaders(second)).toEqual(stableHeaders(first));
      expect(second.headers.etag).toBe(md5(data));
      expect(second.headers['x-image-meta-property-distro']).toBe('debian');
      expect(await metric(t, 'glance_image_cache_hits_total')).toBe(
        hitsBefore + 1,
      );
      const list = await request(t.http).get('/v1/cached_images').set(ADMIN);
      const entry = list.body.cached_images.find(
        (e: { image_id: string }) => e.image_id === image.id,
      );
      expect(entry).toMatchObject({
        image_id: image.id,
        hits: 1,
        size: data.length,
      });
      expect(entry.last_accessed).toBeGreaterThan(0);
    });

    it('reads the backend once for sixteen concurrent misses, each client getting every byte', async () => {
      const data = randomBytes(2 * MiB);
      const backend = await countingBackend(data);
      try {
        const id = await remoteImage(t, backend.url, data);
        const before = await metric(
          t,
          'glance_image_cache_backend_bytes_total',
        );
        const port = await portOf(t);
        await downloadAtOnce([port], id, 16, data);
        expect(backend.state).toEqual({ gets: 1, rangeGets: 0 });
        expect(await metric(t, 'glance_image_cache_backend_bytes_total')).toBe(
          before + data.length,
        );
        await until(() => t.app.get(ImageCache).isCached(id));
      } finally {
        await backend.close();
      }
    });

    it('two workers sharing the cache folder fill once between them (lock and index on disk)', async () => {
      const worker = await createTestApp({
        IMAGE_CACHE_DIR: dir,
        EXTERNAL_SOURCE_ALLOWLIST: '127.0.0.1',
        DATABASE_URL: t.config.DATABASE_URL,
        FILESYSTEM_STORE_DATADIR: t.storeDir,
      });
      const data = randomBytes(MiB);
      const backend = await countingBackend(data);
      try {
        const id = await remoteImage(t, backend.url, data);
        const ports = [await portOf(t), await portOf(worker)];
        await downloadAtOnce(ports, id, 8, data);
        expect(backend.state).toEqual({ gets: 1, rangeGets: 0 });
        // Clients have every byte a moment before the filler's commit (rename + row).
        await until(() => worker.app.get(ImageCache).isCached(id));
      } finally {
        await backend.close();
        await worker.app.close();
        rmSync(worker.dir, { recursive: true, force: true });
      }
    });

    it('leaves no entry and no stray file when the filling client disconnects', async () => {
      const data = randomBytes(2 * MiB);
      const backend = await countingBackend(data);
      try {
        const id = await remoteImage(t, backend.url, data);
        const port = await portOf(t);
        await new Promise<void>((resolve) => {
          const req = http.get(
            {
              port,
              host: '127.0.0.1',
              path: `/v1/images/${id}`,
              headers: ADMIN,
            },
            (res) => {
              res.once('data', () => {
                req.destroy();
                resolve();
              });
            },
          );
          req.on('error', () => undefined);
        });
        await until(() => readdirSync(join(dir, 'incomplete')).length === 0);
        expect(t.app.get(ImageCache).isCached(id)).toBe(false);
        expect(existsSync(join(dir, id))).toBe(false);
      } finally {
        await backend.close();
      }
    });

    it('a client following a fill whose client went away gets the rest from the store by range', async () => {
      const data = randomBytes(2 * MiB);
      // Slow (16 KiB per 5 ms): the fill is still running when its client leaves.
      const backend = await countingBackend(data, 16 * KiB);
      try {
        const id = await remoteImage(t, backend.url, data);
        const port = await portOf(t);
        const get = () =>
          new Promise<{ req: http.ClientRequest; body: Promise<Buffer> }>(
            (resolve) => {
              const req = http.get(
                {
                  port,
                  host: '127.0.0.1',
                  path: `/v1/images/${id}`,
                  headers: ADMIN,
                },
                (res) => {
                  const chunks: Buffer[] = [];
                  const body = new Promise<Buffer>((done) => {
                    res.on('data', (c: Buffer) => chunks.push(c));
                    res.on('end', () => done(Buffer.concat(chunks)));
                    res.on('close', () => done(Buffer.concat(chunks)));
                  });
                  res.once('data', () => resolve({ req, body }));
                },
              );
              req.on('error', () => undefined);
            },
          );
        const filler = await get();
        const follower = await get();
        filler.req.destroy();
        const body = await follower.body;
        expect(md5(body)).toBe(md5(data));
        expect(backend.state).toEqual({ gets: 1, rangeGets: 1 });
        await until(() => readdirSync(join(dir, 'incomplete')).length === 0);
      } finally {
        await backend.close();
      }
    });

    it('a missing incomplete/ folder: the download comes from the store, the failure is counted', async () => {
      const data = randomBytes(64 * KiB);
      const image = await createImage(t, { data });
      const failures = await metric(
        t,
        'glance_image_cache_write_failures_total',
      );
      rmSync(join(dir, 'incomplete'), { recursive: true });
      try {
        const res = await download(t, image.id);
        expect(res.status).toBe(200);
        expect(md5(res.body)).toBe(md5(data));
        expect(await metric(t, 'glance_image_cache_write_failures_total')).toBe(
          failures + 1,
        );
        expect(t.app.get(ImageCache).isCached(image.id)).toBe(false);
      } finally {
        mkdirSync(join(dir, 'incomplete'));
      }
    });

    it('keeps a fill whose client hung up as soon as it had every byte, before the store signalled its end', async () => {
      const data = randomBytes(256 * KiB);
      let gets = 0;
      // Chunked, with the end 300 ms after the last byte: the client has the
      // whole body (Content-Length) long before the store's stream ends.
      const backend = http.createServer((req, res) => {
        if (req.method === 'HEAD') return res.writeHead(200, { 'content-length': data.length }).end();
        gets++;
        res.writeHead(200);
        res.write(data);
        setTimeout(() => res.end(), 300);
      });
      await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
      try {
        const { port: backendPort } = backend.address() as { port: number };
        const id = await remoteImage(t, `http://127.0.0.1:${backendPort}/slow-end.raw`, data);
        // A connection without keep-alive: the client closes once the body is complete.
        const first = await rawRequest(await portOf(t), { method: 'GET', path: `/v1/images/${id}`, headers: ADMIN });
        expect(first.status).toBe(200);
        expect(md5(first.body)).toBe(md5(data));
        await until(() => t.app.get(ImageCache).isCached(id));
        const second = await download(t, id);
        expect(md5(second.body)).toBe(md5(data));
        expect(gets).toBe(1);
      } finally {
        await new Promise<void>((r) => backend.close(() => r()));
      }
    });

    it('moves a fill whose md5 does not match to invalid/, serves the client, and clean removes it', async () => {
      const data = randomBytes(100 * KiB);
      const wrong = Buffer.from(data);
      wrong[10] ^= 0xff;
      const backend = await countingBackend(wrong);
      try {
        const id = await remoteImage(t, backend.url, data);
        const res = await download(t, id);
        expect(res.status).toBe(200);
        expect(res.body.length).toBe(data.length);
        await until(() => existsSync(join(dir, 'invalid', id)));
        expect(t.app.get(ImageCache).isCached(id)).toBe(false);
        expect(await t.app.get(ImageCache).clean()).toBeGreaterThanOrEqual(1);
        expect(existsSync(join(dir, 'invalid', id))).toBe(false);
      } finally {
        await backend.close();
      }
    });

    it('evicts on DELETE, on deactivation found at a hit, and never for a caller who may not see the image', async () => {
      const data = randomBytes(10 * KiB);
      const owned = await createImage(
        t,
        { data, is_public: false },
        as('tenant-a'),
      );
      const first = await download(t, owned.id, as('tenant-a'));
      expect(first.status).toBe(200);
      expect(md5(first.body)).toBe(md5(data));
      await until(() => t.app.get(ImageCache).isCached(owned.id));
      // Another tenant: the same 404 as without a cache, and the entry stays.
      expect((await download(t, owned.id, as('tenant-b'))).status).toBe(404);
      expect(t.app.get(ImageCache).isCached(owned.id)).toBe(true);
      // A member may not manage the cache.
      for (const [method, path] of [
        ['get', '/v1/cached_images'],
        ['delete', `/v1/cached_images/${owned.id}`],
        ['delete', '/v1/cached_images'],
        ['put', `/v1/queued_images/${owned.id}`],
        ['get', '/v2/queued_images'],
      ] as const) {
        expect(
          (await request(t.http)[method](path).set(as('tenant-a'))).status,
          `${method} ${path}`,
        ).toBe(403);
      }
      expect(t.app.get(ImageCache).isCached(owned.id)).toBe(true);
      // Queueing an image the admin cannot find: 404.
      expect(
        (
          await request(t.http)
            .put(`/v1/queued_images/${randomUUID()}`)
            .set(ADMIN)
        ).status,
      ).toBe(404);
      expect(
        (
          await request(t.http)
            .delete(`/v1/images/${owned.id}`)
            .set(as('tenant-a'))
        ).status,
      ).toBe(200);
      expect(t.app.get(ImageCache).isCached(owned.id)).toBe(false);
      expect(existsSync(join(dir, owned.id))).toBe(false);
    });

    it('management routes under /v1 and /v2 with the JSON bodies of Glance', async () => {
      const docs = await request(t.http).get('/api-docs-json');
      for (const path of [
        '/v1/cached_images',
        '/v2/cached_images/{id}',
        '/v1/queued_images/{id}',
        '/v2/queued_images',
      ]) {
        expect(Object.keys(docs.body.paths)).toContain(path);
      }
      const data = randomBytes(8 * KiB);
      const image = await createImage(t, { data });
      await download(t, image.id);
      await until(() => t.app.get(ImageCache).isCached(image.id));
      const v2 = await request(t.http).get('/v2/cached_images').set(ADMIN);
      expect(v2.status).toBe(200);
      expect(
        v2.body.cached_images.map((e: { image_id: string }) => e.image_id),
      ).toContain(image.id);
      const cached = v2.body.cached_images.find(
        (e: { image_id: string }) => e.image_id === image.id,
      );
      expect(cached.last_accessed).toBe(0);
      expect(cached.last_modified).toBeGreaterThan(Date.now() / 1000 - 60);
      expect(
        (
          await request(t.http)
            .delete(`/v2/cached_images/${image.id}`)
            .set(ADMIN)
        ).status,
      ).toBe(200);
      expect(
        (
          await request(t.http)
            .delete(`/v2/cached_images/${image.id}`)
            .set(ADMIN)
        ).status,
      ).toBe(200);
      expect(
        (await request(t.http).put(`/v1/queued_images/${image.id}`).set(ADMIN))
          .status,
      ).toBe(200);
      expect(
        (await request(t.http).put(`/v1/queued_images/${image.id}`).set(ADMIN))
          .status,
      ).toBe(200);
      expect(
        (await request(t.http).get('/v1/queued_images').set(ADMIN)).body,
      ).toEqual({ queued_images: [image.id] });
      expect(await t.app.get(CacheMaintenanceService).prefetch()).toBe(1);
      expect(
        (await request(t.http).get('/v1/queued_images').set(ADMIN)).body,
      ).toEqual({ queued_images: [] });
      expect(t.app.get(ImageCache).isCached(image.id)).toBe(true);
      const all = await request(t.http).delete('/v1/cached_images').set(ADMIN);
      expect(all.status).toBe(200);
      expect(all.body.num_deleted).toBeGreaterThanOrEqual(1);
      expect(
        (await request(t.http).get('/v1/cached_images').set(ADMIN)).body,
      ).toEqual({ cached_images: [] });
    });

    it('prefetch drops images that are not active and keeps failures queued', async () => {
      const queuedOnly = await createImage(t, {});
      const data = randomBytes(4 * KiB);
      const backend = await countingBackend(data);
      const id = await remoteImage(t, backend.url, data);
      await backend.close();
      const cache = t.app.get(ImageCache);
      await cache.dequeueAll();
      expect(
        (
          await request(t.http)
            .put(`/v1/queued_images/${queuedOnly.id}`)
            .set(ADMIN)
        ).status,
      ).toBe(200);
      expect(
        (await request(t.http).put(`/v1/queued_images/${id}`).set(ADMIN))
          .status,
      ).toBe(200);
      expect(await t.app.get(CacheMaintenanceService).prefetch()).toBe(0);
      // The queued (not active) image left the queue; the one whose store is down stays.
      expect(await cache.queued()).toEqual([id]);
      const res = await request(t.http).delete('/v1/queued_images').set(ADMIN);
      expect(res.body).toEqual({ num_deleted: 1 });
    });
  },
);

describe.runIf(TEST_DATABASE === 'sqlite')(
  'image cache size limit, restart and write failures',
  () => {
    it('prunes least recently used first, never the entry just written, and does not cache an image larger than the cache', async () => {
      const dir = cacheDir();
      const t = await createTestApp({
        IMAGE_CACHE_DIR: dir,
        IMAGE_CACHE_MAX_SIZE: String(25 * KiB),
      });
      try {
        const cache = t.app.get(ImageCache);
        const images = [];
        for (let i = 0; i < 3; i++)
          images.push(await createImage(t, { data: randomBytes(10 * KiB) }));
        const [a, b, c] = images;
        await download(t, a.id);
        await until(() => cache.isCached(a.id));
        await download(t, b.id);
        await until(() => cache.isCached(b.id));
        await new Promise((r) => setTimeout(r, 20));
        // a is used again: b is now the least recently used.
        expect((await download(t, a.id)).status).toBe(200);
        await download(t, c.id);
        await until(() => cache.isCached(c.id));
        expect(cache.isCached(b.id)).toBe(false);
        expect(cache.isCached(a.id)).toBe(true);
        expect(cache.totals().size).toBeLessThanOrEqual(25 * KiB);
        const big = randomBytes(30 * KiB);
        const huge = await createImage(t, { data: big });
        const res = await download(t, huge.id);
        expect(md5(res.body)).toBe(md5(big));
        expect(cache.isCached(huge.id)).toBe(false);
        expect(readdirSync(join(dir, 'incomplete'))).toEqual([]);
      } finally {
        await t.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('at restart removes incomplete files and drops entries whose file is missing or has the wrong size', async () => {
      const dir = cacheDir();
      let t = await createTestApp({ IMAGE_CACHE_DIR: dir });
      const ids: string[] = [];
      try {
        for (let i = 0; i < 3; i++) {
          const image = await createImage(t, { data: randomBytes(5 * KiB) });
          await download(t, image.id);
          await until(() => t.app.get(ImageCache).isCached(image.id));
          ids.push(image.id);
        }
      } finally {
        await t.app.close();
      }
      rmSync(join(dir, ids[0]));
      truncateSync(join(dir, ids[1]), 100);
      writeFileSync(join(dir, 'incomplete', randomUUID()), 'crash leftovers');
      const firstDir = t.dir;
      t = await createTestApp({
        IMAGE_CACHE_DIR: dir,
        DATABASE_URL: t.config.DATABASE_URL,
        FILESYSTEM_STORE_DATADIR: t.storeDir,
      });
      try {
        const cache = t.app.get(ImageCache);
        expect(cache.list().map((e) => e.image_id)).toEqual([ids[2]]);
        expect(readdirSync(join(dir, 'incomplete'))).toEqual([]);
        expect(existsSync(join(dir, ids[1]))).toBe(false);
        expect((await download(t, ids[2])).status).toBe(200);
      } finally {
        await t.close();
        rmSync(firstDir, { recursive: true, force: true });
        rmSync(dir, { recursive: true, force: true });
      }
    });

    // A cache folder that fills up mid-download needs a small filesystem: a
    // tmpfs, which only root may mount (CI runs as root; non-root runs skip).
    it.runIf(process.getuid?.() === 0)(
      'a cache folder that fills up mid-download leaves every download complete and correct',
      async () => {
        const fullDir = mountTmpfs('1m', 'glance-full-cache-');
        expect(fullDir).not.toBeNull();
        const t = await createTestApp({
          IMAGE_CACHE_DIR: fullDir!,
          EXTERNAL_SOURCE_ALLOWLIST: '127.0.0.1',
        });
        const data = randomBytes(3 * MiB);
        const backend = await countingBackend(data);
        try {
          const id = await remoteImage(t, backend.url, data);
          const port = await portOf(t);
          await downloadAtOnce([port], id, 4, data);
          expect(
            await metric(t, 'glance_image_cache_write_failures_total'),
          ).toBeGreaterThanOrEqual(1);
          expect(t.app.get(ImageCache).isCached(id)).toBe(false);
          await until(
            () => readdirSync(join(fullDir!, 'incomplete')).length === 0,
          );
          // Degraded, not down: still 200, with the reason visible.
          try {
            execFileSync(
              'dd',
              [
                'if=/dev/zero',
                `of=${join(fullDir!, 'filler')}`,
                'bs=64k',
                'count=64',
              ],
              { stdio: 'ignore' },
            );
          } catch {
            // dd fails once the tmpfs is full, which is the point.
          }
          const health = await request(t.http).get('/healthcheck');
          expect(health.status).toBe(200);
          expect(health.text).toMatch(/^OK\nimage_cache: degraded/);
          expect(health.headers['x-health-degraded']).toBe('image_cache');
        } finally {
          await backend.close();
          await t.close();
          execFileSync('umount', [fullDir!]);
          rmSync(fullDir!, { recursive: true, force: true });
        }
      },
    );
  },
);

// Where a cache pays: an object store across the network. The store, not
// the database, is under test: SQLite only.
describe.runIf(TEST_DATABASE === 'sqlite' && !!env.SWIFT_AUTH_URL)(
  'image cache in front of the Swift store',
  () => {
    let t: TestApp;
    let dir: string;
    beforeAll(async () => {
      dir = cacheDir();
      t = await createTestApp({
        IMAGE_CACHE_DIR: dir,
        DEFAULT_STORE: 'swift',
        SWIFT_STORE_AUTH_URL: env.SWIFT_AUTH_URL,
        SWIFT_STORE_USER: env.SWIFT_USER,
        SWIFT_STORE_KEY: env.SWIFT_KEY,
        SWIFT_STORE_CONTAINER: `cache-${randomUUID().slice(0, 8)}`,
        SWIFT_STORE_LARGE_OBJECT_SIZE: String(MiB),
        SWIFT_STORE_LARGE_OBJECT_CHUNK_SIZE: String(MiB),
      });
    });
    afterAll(async () => {
      await t?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('sixteen concurrent misses read the object once; with the object gone the cache still serves it', async () => {
      const data = randomBytes(4 * MiB + 123);
      const image = await createImage(t, { data });
      const before = await metric(t, 'glance_image_cache_backend_bytes_total');
      const port = await portOf(t);
      const results = await downloadAtOnce([port], image.id, 16, data);
      for (const r of results) expect(r.headers.etag).toBe(md5(data));
      expect(await metric(t, 'glance_image_cache_backend_bytes_total')).toBe(
        before + data.length,
      );
      await dropFromStore(t, image.id);
      const again = await download(t, image.id);
      expect(again.status).toBe(200);
      expect(md5(again.body)).toBe(md5(data));
      expect(await metric(t, 'glance_image_cache_backend_bytes_total')).toBe(
        before + data.length,
      );
    });
  },
);

const CACHE_MANAGE =
  '/usr/lib/python3/dist-packages/glance/cmd/cache_manage.py';
if (
  process.env.REQUIRE_GLANCE_CACHE_MANAGE === '1' &&
  !existsSync(CACHE_MANAGE)
) {
  throw new Error(
    'python3-glance (glance-cache-manage) is required here: apt-get install python3-glance',
  );
}

/** Debian's glance-cache-manage (python3-glance), as an operator runs it. */
async function cacheManage(
  port: number,
  ...args: string[]
): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(
      '/usr/bin/python3',
      [
        '-c',
        'from glance.cmd.cache_manage import main; main()',
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        ...args,
      ],
      // Identity v1 keeps the CLI from appending /v3 to an empty auth URL (which forces keystone).
      {
        env: {
          PATH: '/usr/bin:/bin',
          HOME: tmpdir(),
          OS_IDENTITY_API_VERSION: '1',
          OS_AUTH_STRATEGY: 'noauth',
        },
      },
    );
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

// The CLI talks HTTP only: the database makes no difference, SQLite only.
describe.runIf(TEST_DATABASE === 'sqlite' && existsSync(CACHE_MANAGE))(
  'glance-cache-manage against the service',
  () => {
    let t: TestApp;
    let off: TestApp;
    let dir: string;
    beforeAll(async () => {
      dir = cacheDir();
      t = await createTestApp({ IMAGE_CACHE_DIR: dir });
      off = await createTestApp({});
    });
    afterAll(async () => {
      await t?.close();
      await off?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    // Each run of the CLI costs ~0.8 s of Python start-up: one call per command,
    // independent ones at once, intermediate states checked over HTTP.
    it('lists, queues and deletes through /v2, and reports a service without a cache', async () => {
      const port = await portOf(t);
      const data = randomBytes(16 * KiB);
      const a = await createImage(t, { data });
      const b = await createImage(t, { data: randomBytes(8 * KiB) });
      const c = await createImage(t, { data: randomBytes(8 * KiB) });
      await download(t, a.id);
      await until(() => t.app.get(ImageCache).isCached(a.id));
      await download(t, a.id);
      const offPort = await portOf(off);
      const [listed, queuedB, queuedC, offList] = await Promise.all([
        cacheManage(port, 'list-cached'),
        cacheManage(port, 'queue-image', b.id, '-f'),
        cacheManage(port, 'queue-image', c.id, '-f'),
        cacheManage(offPort, 'list-cached'),
      ]);
      expect(listed.out).toContain('Found 1 cached images...');
      expect(listed.out).toMatch(
        new RegExp(`${a.id}.*\\|\\s*${data.length}\\s*\\|\\s*1\\s*\\|`),
      );
      expect([queuedB.code, queuedC.code]).toEqual([0, 0]);
      expect(offList.out).toContain('Cache management middleware not enabled');

      const queued = await cacheManage(port, 'list-queued');
      expect(queued.out).toContain('Found 2 queued images...');
      expect(queued.out).toContain(b.id);
      expect(
        (await cacheManage(port, 'delete-queued-image', c.id, '-f')).code,
      ).toBe(0);
      expect((await request(t.http).get('/v2/queued_images')).body).toEqual({
        queued_images: [b.id],
      });
      expect(await t.app.get(CacheMaintenanceService).prefetch()).toBe(1);
      expect(t.app.get(ImageCache).isCached(b.id)).toBe(true);
      await request(t.http).put(`/v2/queued_images/${c.id}`).expect(200);

      const [deletedA, allQueued] = await Promise.all([
        cacheManage(port, 'delete-cached-image', a.id, '-f'),
        cacheManage(port, 'delete-all-queued-images', '-f', '-v'),
      ]);
      expect(deletedA.code).toBe(0);
      expect(t.app.get(ImageCache).isCached(a.id)).toBe(false);
      expect(allQueued.out).toContain('Deleted 1 queued images');
      expect(
        (await cacheManage(port, 'delete-all-cached-images', '-f', '-v')).out,
      ).toContain('Deleted 1 cached images');
      expect((await request(t.http).get('/v2/cached_images')).body).toEqual({
        cached_images: [],
      });
    });
  },
);

// Two API nodes share the database and the store, each with its own cache.
// What it guards (a delete committed through one node, a hit on another)
// goes through the shared database, so it also runs on PostgreSQL; MariaDB
// adds nothing the other two do not cover, and the budget is tight.
describe.runIf(TEST_DATABASE === 'sqlite' || TEST_DATABASE === 'postgres')(
  'two nodes, each with its own cache',
  () => {
    it("a deleted image is not served from the second node's cache, which evicts it", async () => {
      const work = mkdtempSync(join(tmpdir(), 'glance-two-nodes-'));
      const database = await createTestDatabase(work);
      const shared = {
        DATABASE_URL: database.url,
        FILESYSTEM_STORE_DATADIR: join(work, 'images'),
      };
      const cacheB = join(work, 'cache-b');
      const a = await createTestApp({
        ...shared,
        IMAGE_CACHE_DIR: join(work, 'cache-a'),
        NODE_ID: 'node-a',
      });
      const b = await createTestApp({
        ...shared,
        IMAGE_CACHE_DIR: cacheB,
        NODE_ID: 'node-b',
      });
      try {
        const data = randomBytes(20 * KiB);
        const image = await createImage(
          a,
          { data, is_public: false },
          as('tenant-a'),
        );
        const viaB = await download(b, image.id, as('tenant-a'));
        expect(md5(viaB.body)).toBe(md5(data));
        await until(() => b.app.get(ImageCache).isCached(image.id));
        expect(a.app.get(ImageCache).isCached(image.id)).toBe(false);
        // Another tenant asking node B: the same 404, and the entry stays.
        expect((await download(b, image.id, as('tenant-b'))).status).toBe(404);
        expect(b.app.get(ImageCache).isCached(image.id)).toBe(true);

        expect(
          (
            await request(a.http)
              .delete(`/v1/images/${image.id}`)
              .set(as('tenant-a'))
          ).status,
        ).toBe(200);
        expect((await download(b, image.id, as('tenant-a'))).status).toBe(404);
        expect(b.app.get(ImageCache).isCached(image.id)).toBe(false);
        expect(existsSync(join(cacheB, image.id))).toBe(false);
      } finally {
        await a.close();
        await b.close();
        await database.drop();
        rmSync(work, { recursive: true, force: true });
      }
    });
  },
);
