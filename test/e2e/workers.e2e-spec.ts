import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nowTimestamp } from '../../src/common/timestamps.js';
import { buildDataSourceOptions } from '../../src/registry/data-source-options.js';
import { ImageEntity } from '../../src/registry/entities/image.entity.js';
import { countingBackend } from '../support/counting-backend.js';
import { md5, waitFor } from '../support/image-assertions.js';
import { metaHeaders } from '../support/image-builder.js';
import { rawRequest, type RawResponse } from '../support/raw-http.js';
import {
  createTestDatabase,
  TEST_DATABASE,
  type TestDatabase,
} from '../support/test-database.js';
import { as } from '../support/test-app.js';
import { freePort } from '../support/free-port.js';
import { transpileServer } from '../support/transpile-server.js';

const RATE_LIMIT = 10;
const IMAGE_COUNT_QUOTA = 5;
const NODE_ID = 'workers-node';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// One WORKERS=2 server per database. MariaDB is left out: what processes share
// there (row locks, conditional updates) is what PostgreSQL already covers,
// and every run of this file costs a server start; SQLite is where several
// processes on one file need their own care.
describe.skipIf(TEST_DATABASE === 'mysql')(
  `WORKERS=2 on one node (${TEST_DATABASE})`,
  () => {
    let work: string;
    let storeDir: string;
    let database: TestDatabase;
    let observer: DataSource;
    let primary: ChildProcess;
    let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
    let port: number;
    let out = '';
    const leftover = randomUUID();

    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), 'glance-workers-'));
      storeDir = join(work, 'images');
      mkdirSync(storeDir);
      const main = transpileServer(join(work, 'build'));
      database = await createTestDatabase(work);
      observer = new DataSource(buildDataSourceOptions(database.url));
      await observer.initialize();
      // A leftover of this node's last life (an upload in flight when it died), and
      // one migration still to apply: the primary must do both before any worker starts.
      await observer.runMigrations({ transaction: 'each' });
      const now = nowTimestamp();
      await observer.getRepository(ImageEntity).insert({
        id: leftover,
        name: 'leftover',
        status: 'saving',
        owner: 'tenant-left',
        size: 0,
        isPublic: false,
        protected: false,
        minDisk: 0,
        minRam: 0,
        createdAt: now,
        updatedAt: now,
        deleted: false,
        uploadNode: NODE_ID,
      });
      writeFileSync(join(storeDir, `${leftover}.part`), randomBytes(4096));
      await observer.undoLastMigration({ transaction: 'each' });
      port = await freePort();
      primary = spawn(process.execPath, [main], {
        cwd: work,
        env: {
          PATH: process.env.PATH ?? '',
          NO_COLOR: '1',
          PORT: String(port),
          HOST: '127.0.0.1',
          WORKERS: '2',
          DATABASE_URL: database.url,
          FILESYSTEM_STORE_DATADIR: storeDir,
          NODE_ID,
          LOG_FORMAT: 'text',
          ACCESS_LOG: 'false',
          NOTIFICATION_DRIVER: 'noop',
          RATE_LIMIT_PER_MINUTE: String(RATE_LIMIT),
          IMAGE_COUNT_QUOTA: String(IMAGE_COUNT_QUOTA),
          SHUTDOWN_TIMEOUT: '5',
          IMAGE_CACHE_DIR: join(work, 'cache'),
          EXTERNAL_SOURCE_ALLOWLIST: '127.0.0.1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        // Its own process group: the shutdown test signals the whole group.
        detached: true,
      });
      const keep = (chunk: Buffer) => {
        out = (out + chunk.toString()).slice(-50_000);
      };
      primary.stdout!.on('data', keep);
      primary.stderr!.on('data', keep);
      exited = new Promise((done) =>
        primary.once('exit', (code, signal) => done({ code, signal })),
      );
      await waitFor(
        () => {
          if (primary.exitCode !== null)
            throw new Error(`the server exited:\n${out}`);
          return out.includes('with 2 workers');
        },
        'both workers to listen',
        30_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${out}`);
      });
    }, 60_000);

    afterAll(async () => {
      if (primary && primary.exitCode === null && primary.signalCode === null) {
        process.kill(-primary.pid!, 'SIGKILL');
        await exited;
      }
      if (observer?.isInitialized) await observer.destroy();
      await database?.drop();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    const statusOf = async (id: string) =>
      (await observer.getRepository(ImageEntity).findOneBy({ id }))?.status;
    const ownerOf = async (id: string) =>
      (await observer.getRepository(ImageEntity).findOneBy({ id }))
        ?.uploadWorker;
    const partOf = (id: string) => join(storeDir, `${id}.part`);

    /** A POST whose body stays open after its first MiB. */
    function openUpload(id: string, tenant: string) {
      const body = new PassThrough();
      const response: Promise<RawResponse | Error> = rawRequest(port, {
        method: 'POST',
        path: '/v1/images',
        headers: {
          ...metaHeaders({ id, name: `upload-${id.slice(0, 8)}` }),
          ...as(tenant),
          'content-type': 'application/octet-stream',
        },
        body,
      }).catch((err: Error) => err);
      body.write(randomBytes(1024 * 1024));
      return { body, response };
    }

    /** Worker pids that logged listening and are still alive. */
    const livingWorkers = () =>
      [
        ...new Set(
          [
            ...out.matchAll(
              /\[Nest\] (\d+) .*\[Main\] Glance v1 API listening/g,
            ),
          ].map((m) => Number(m[1])),
        ),
      ].filter((pid) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      });

    const untilSaving = (id: string) =>
      waitFor(
        async () => (await statusOf(id)) === 'saving' && existsSync(partOf(id)),
        `${id} saving`,
        15_000,
      );

    it('migrates once and cleans the node’s leftover uploads, in the primary, before the workers start', async () => {
      const applied = out
        .split('\n')
        .filter((l) => /Applied \d+ migration/.test(l));
      expect(applied).toHaveLength(1);
      expect(applied[0]).toContain('Applied 1 migration(s)');
      expect(await statusOf(leftover)).toBe('killed');
      expect(existsSync(partOf(leftover))).toBe(false);
      expect(out).toContain(`Killed orphaned upload of image ${leftover}`);
      expect(out.indexOf('Applied')).toBeLessThan(
        out.indexOf('Glance v1 API listening'),
      );
    });

    it('counts RATE_LIMIT_PER_MINUTE for the whole node, whichever worker answers', async () => {
      const codes: number[] = [];
      for (let i = 0; i < RATE_LIMIT + 2; i++) {
        // Fresh connections alternate between the workers; a DELETE counts as a change.
        const res = await rawRequest(port, {
          method: 'DELETE',
          path: `/v1/images/${randomUUID()}`,
          headers: as('tenant-rl'),
        });
        codes.push(res.status);
      }
      expect(codes).toEqual([...Array<number>(RATE_LIMIT).fill(404), 429, 429]);
    });

    it('holds IMAGE_COUNT_QUOTA under concurrent creates on both workers', async () => {
      const answers = await Promise.all(
        Array.from({ length: RATE_LIMIT }, (_, i) =>
          rawRequest(port, {
            method: 'POST',
            path: '/v1/images',
            headers: {
              ...metaHeaders({ name: `quota-${i}` }),
              ...as('tenant-quota'),
            },
          }),
        ),
      );
      const codes = answers.map((r) => r.status).sort((a, b) => a - b);
      expect(codes).toEqual([
        ...Array<number>(IMAGE_COUNT_QUOTA).fill(201),
        ...Array<number>(RATE_LIMIT - IMAGE_COUNT_QUOTA).fill(413),
      ]);
    });

    it('a list page kept by one worker shows a change made through the other at once', async () => {
      // Fresh connections alternate between the workers: six lists warm both workers' pages.
      const detail = async () => {
        const res = await rawRequest(port, {
          method: 'GET',
          path: '/v1/images/detail',
          headers: as('tenant-pages'),
        });
        expect(res.status).toBe(200);
        return (
          JSON.parse(res.body.toString()) as {
            images: { id: string; name: string }[];
          }
        ).images;
      };
      for (let i = 0; i < 6; i++) expect(await detail()).toEqual([]);
      const created = await rawRequest(port, {
        method: 'POST',
        path: '/v1/images',
        headers: { ...metaHeaders({ name: 'paged' }), ...as('tenant-pages') },
      });
      expect(created.status).toBe(201);
      const id = (
        JSON.parse(created.body.toString()) as { image: { id: string } }
      ).image.id;
      for (let i = 0; i < 6; i++)
        expect((await detail()).map((image) => image.id)).toEqual([id]);
      const renamed = await rawRequest(port, {
        method: 'PUT',
        path: `/v1/images/${id}`,
        headers: { ...as('tenant-pages'), 'x-image-meta-name': 'renamed' },
      });
      expect(renamed.status).toBe(200);
      for (let i = 0; i < 6; i++)
        expect((await detail()).map((image) => image.name)).toEqual([
          'renamed',
        ]);
    });

    it('reports /metrics for the whole node', async () => {
      for (let i = 0; i < 6; i++) {
        const res = await rawRequest(port, {
          method: 'GET',
          path: '/v1/images',
          headers: as('tenant-m'),
        });
        expect(res.status).toBe(200);
      }
      const scrape = await rawRequest(port, {
        method: 'GET',
        path: '/metrics',
      });
      expect(scrape.status).toBe(200);
      const text = scrape.body.toString();
      expect(text).toMatch(
        /^http_requests_total\{method="GET",route="\/v1\/images",status="200"\} 6$/m,
      );
      // Node-wide gauges are the node's figure, not one per worker added up.
      const reported = [
        ...text.matchAll(/^glance_images\{status="[a-z_]+"\} (\d+)$/gm),
      ]
        .map((m) => Number(m[1]))
        .reduce((a, b) => a + b, 0);
      expect(reported).toBe(await observer.getRepository(ImageEntity).count());
    });

    it('sixteen concurrent misses on both workers read the backend once (the cache fill lock is on disk)', async () => {
      const data = randomBytes(2 * 1024 * 1024);
      const backend = await countingBackend(data);
      try {
        const created = await rawRequest(port, {
          method: 'POST',
          path: '/v1/images',
          headers: {
            ...metaHeaders({ name: 'storm', is_public: true }),
            'x-image-meta-location': backend.url,
            'x-image-meta-size': String(data.length),
            'x-image-meta-checksum': md5(data),
          },
        });
        expect(created.status).toBe(201);
        const id = (
          JSON.parse(created.body.toString()) as { image: { id: string } }
        ).image.id;
        // Each request opens its own connection: the workers take them in turn.
        const answers = await Promise.all(
          Array.from({ length: 16 }, () =>
            rawRequest(port, {
              method: 'GET',
              path: `/v1/images/${id}`,
              headers: as('tenant-c'),
            }),
          ),
        );
        for (const r of answers) {
          expect(r.status).toBe(200);
          expect(md5(r.body)).toBe(md5(data));
        }
        expect(backend.state).toEqual({ gets: 1, rangeGets: 0 });
      } finally {
        await backend.close();
      }
    });

    it('a delete stops an upload promptly whichever worker runs it', async () => {
      const [c, d] = [randomUUID(), randomUUID()];
      // Connections alternate between the workers: c and d run on different ones,
      // and each delete (in reverse order) reaches the worker that does not run it.
      const upC = openUpload(c, 'tenant-del');
      await untilSaving(c);
      const upD = openUpload(d, 'tenant-del');
      await untilSaving(d);
      expect(await ownerOf(c)).not.toBe(await ownerOf(d));
      const started = Date.now();
      for (const id of [d, c]) {
        const del = await rawRequest(port, {
          method: 'DELETE',
          path: `/v1/images/${id}`,
          headers: as('tenant-del'),
        });
        expect(del.status).toBe(200);
      }
      await Promise.all([upC.response, upD.response]);
      expect(Date.now() - started).toBeLessThan(3000);
      upC.body.destroy();
      upD.body.destroy();
      await waitFor(
        () => !existsSync(partOf(c)) && !existsSync(partOf(d)),
        'partial data removed',
        5000,
      );
    });

    it('concurrent creates, uploads and deletes: no database error reaches a client; one racing upload wins', async () => {
      const ops = Array.from({ length: 8 }, (_, t) =>
        as(`tenant-c${t}`),
      ).flatMap((tenant) => [
        rawRequest(port, {
          method: 'POST',
          path: '/v1/images',
          headers: {
            ...metaHeaders({ name: 'with-data' }),
            ...tenant,
            'content-type': 'application/octet-stream',
          },
          body: randomBytes(64 * 1024),
        }),
        rawRequest(port, {
          method: 'POST',
          path: '/v1/images',
          headers: { ...metaHeaders({ name: 'queued' }), ...tenant },
        }).then(async (res) => {
          const id = JSON.parse(res.body.toString()).image.id as string;
          return rawRequest(port, {
            method: 'DELETE',
            path: `/v1/images/${id}`,
            headers: tenant,
          });
        }),
        rawRequest(port, {
          method: 'POST',
          path: '/v1/images',
          headers: { ...metaHeaders({ name: 'plain' }), ...tenant },
        }),
      ]);
      const statuses = (await Promise.all(ops)).map(
        (r) => `${r.status} ${r.status >= 300 ? r.body.toString() : ''}`,
      );
      expect(statuses.filter((s) => !/^20[01] /.test(s))).toEqual([]);

      const tenant = as('tenant-race');
      const created = await rawRequest(port, {
        method: 'POST',
        path: '/v1/images',
        headers: { ...metaHeaders({ name: 'race' }), ...tenant },
      });
      const id = JSON.parse(created.body.toString()).image.id as string;
      const racers = await Promise.all(
        Array.from({ length: 4 }, () =>
          rawRequest(port, {
            method: 'PUT',
            path: `/v1/images/${id}`,
            headers: { ...tenant, 'content-type': 'application/octet-stream' },
            body: randomBytes(256 * 1024),
          }),
        ),
      );
      expect(racers.map((r) => r.status).sort((a, b) => a - b)).toEqual([
        200, 409, 409, 409,
      ]);
      expect(await statusOf(id)).toBe('active');
    });

    it('a dead worker: its upload is killed without partial data, its sibling’s upload goes on, it is restarted', async () => {
      const [a, b] = [randomUUID(), randomUUID()];
      const upA = openUpload(a, 'tenant-crash');
      await untilSaving(a);
      const upB = openUpload(b, 'tenant-crash');
      await untilSaving(b);
      const victim = Number(await ownerOf(a));
      expect(String(victim)).not.toBe(await ownerOf(b));
      process.kill(victim, 'SIGKILL');
      await waitFor(
        async () => (await statusOf(a)) === 'killed' && !existsSync(partOf(a)),
        'dead worker upload killed',
        10_000,
      );
      // The primary logs before it reaps, but its stderr may reach this process after the reaped status.
      const died = new RegExp(
        `Worker ${victim} died \\(signal SIGKILL\\).*starting a new worker`,
      );
      await waitFor(
        () => died.test(out),
        'the primary to log the death',
        5_000,
      );
      expect(await statusOf(b)).toBe('saving');
      upB.body.end(randomBytes(1024));
      const done = (await upB.response) as RawResponse;
      expect(done.status).toBe(201);
      expect(await statusOf(b)).toBe('active');
      upA.body.destroy();
      // The replacement serves: two connections in a row reach both workers.
      await waitFor(
        () =>
          (out.match(/Glance v1 API listening on http:\/\/\S+\n/g) ?? [])
            .length >= 3,
        'a new worker',
        20_000,
      );
      for (let i = 0; i < 2; i++) {
        expect(
          (await rawRequest(port, { method: 'GET', path: '/healthcheck' }))
            .status,
        ).toBe(200);
      }
    });

    it('SIGTERM to the process group: every worker drains (an upload in flight completes), the group exits 0', async () => {
      const id = randomUUID();
      const up = openUpload(id, 'tenant-stop');
      await untilSaving(id);
      const workers = [
        ...new Set(
          out.match(/\[Nest\] (\d+) .*\[Main\] Glance v1 API listening/g) ?? [],
        ),
      ];
      expect(workers.length).toBeGreaterThanOrEqual(2);
      // A worker that dies young is restarted after a pause; a shutdown that
      // starts within the pause must not fork it (it would outlive the primary).
      const owner = Number(await ownerOf(id));
      const sibling = livingWorkers().find((pid) => pid !== owner)!;
      process.kill(sibling, 'SIGKILL');
      let young = 0;
      await waitFor(
        () => {
          young =
            livingWorkers().find((pid) => pid !== owner && pid !== sibling) ??
            0;
          return young > 0;
        },
        'the replacement to listen',
        20_000,
      );
      process.kill(young, 'SIGKILL');
      await waitFor(
        () => out.includes(`Worker ${young} died`),
        'the primary to see it',
        5_000,
      );
      // Workers get it directly and again from the primary; neither cuts the upload.
      process.kill(-primary.pid!, 'SIGTERM');
      // Past the restart pause, with the primary still draining this upload.
      await sleep(1_500);
      up.body.end(randomBytes(1024));
      const done = (await up.response) as RawResponse;
      expect(done.status).toBe(201);
      expect(await exited).toEqual({ code: 0, signal: null });
      expect(() => process.kill(-primary.pid!, 0)).toThrow('ESRCH'); // no process of the group is left
      expect(await statusOf(id)).toBe('active');
    }, 40_000);
  },
);
