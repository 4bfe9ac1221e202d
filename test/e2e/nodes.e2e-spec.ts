import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { DataSource } from 'typeorm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildDataSourceOptions } from '../../src/registry/data-source-options.js';
import { ImageEntity } from '../../src/registry/entities/image.entity.js';
import { md5, waitFor } from '../support/image-assertions.js';
import { metaHeaders } from '../support/image-builder.js';
import { freePort } from '../support/free-port.js';
import { transpileServer } from '../support/transpile-server.js';
import { rawRequest, type RawResponse } from '../support/raw-http.js';
import {
  createTestDatabase,
  TEST_DATABASE,
  type TestDatabase,
} from '../support/test-database.js';
import { as } from '../support/test-app.js';

const HEARTBEAT_INTERVAL = 1;
const STALE_UPLOAD_SECONDS = 3;
const MiB = 1024 * 1024;
// Nodes need a database they can share: PostgreSQL, or MariaDB in the mysql run.
const KIND = TEST_DATABASE === 'mysql' ? 'mysql' : 'postgres';

/** One real server process (node dist/src/main.js). */
interface ApiNode {
  readonly nodeId: string;
  readonly port: number;
  readonly child: ChildProcess;
  readonly exited: Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
  }>;
  output(): string;
}

/** A status check that shows the node's log when it fails. */
function expectStatus(res: RawResponse, status: number, node: ApiNode): void {
  const log =
    res.status === status ? '' : `${res.body.toString()}\n${node.output()}`;
  expect({ status: res.status, log }).toEqual({ status, log: '' });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe(`API nodes sharing one database (${KIND}) and one store folder`, () => {
  let work: string;
  let build: string;
  let storeDir: string;
  let database: TestDatabase;
  let observer: DataSource;
  const running = new Set<ApiNode>();

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'glance-nodes-'));
    storeDir = join(work, 'images');
    mkdirSync(storeDir);
    // A private build (file by file, no type check): `nest build` would wipe the dist/ others use.
    build = join(work, 'build');
    transpileServer(build);

    database = await createTestDatabase(work, KIND);
    observer = new DataSource(buildDataSourceOptions(database.url));
    await observer.initialize();
    // Migrated once here, so nodes can start side by side (each would run them at start).
    await observer.runMigrations({ transaction: 'each' });
  }, 180_000);

  afterEach(async () => {
    // Whatever a test left running (also when it failed) is killed here.
    await Promise.all([...running].map((node) => stop(node, 'SIGKILL')));
  });

  afterAll(async () => {
    await Promise.all([...running].map((node) => stop(node, 'SIGKILL')));
    if (observer?.isInitialized) await observer.destroy();
    await database?.drop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  async function startNode(
    nodeId: string,
    env: Record<string, string> = {},
  ): Promise<ApiNode> {
    const port = await freePort();
    const child = spawn(process.execPath, [join(build, 'src/main.js')], {
      cwd: work,
      env: {
        PATH: process.env.PATH ?? '',
        NO_COLOR: '1',
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: database.url,
        FILESYSTEM_STORE_DATADIR: storeDir,
        NODE_ID: nodeId,
        LOG_FORMAT: 'text',
        ACCESS_LOG: 'false',
        NOTIFICATION_DRIVER: 'noop',
        HEARTBEAT_INTERVAL: String(HEARTBEAT_INTERVAL),
        STALE_UPLOAD_SECONDS: String(STALE_UPLOAD_SECONDS),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const keep = (chunk: Buffer) => {
      out = (out + chunk.toString()).slice(-20_000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const exited = new Promise<{
      code: number | null;
      signal: NodeJS.Signals | null;
    }>((done) => child.once('exit', (code, signal) => done({ code, signal })));
    const node: ApiNode = { nodeId, port, child, exited, output: () => out };
    running.add(node);
    void exited.then(() => running.delete(node));

    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`node ${nodeId} exited while starting:\n${out}`);
      }
      const res = await rawRequest(port, {
        method: 'GET',
        path: '/healthcheck',
      }).catch(() => null);
      if (res?.status === 200) return node;
      if (Date.now() > deadline) {
        throw new Error(`node ${nodeId} did not become healthy:\n${out}`);
      }
      await sleep(100);
    }
  }

  async function stop(node: ApiNode, signal: NodeJS.Signals) {
    if (node.child.exitCode === null && node.child.signalCode === null) {
      node.child.kill(signal);
    }
    return node.exited;
  }

  async function statusOf(id: string): Promise<string | undefined> {
    const row = await observer.getRepository(ImageEntity).findOneBy({ id });
    return row?.status;
  }

  const partOf = (id: string) => join(storeDir, `${id}.part`);
  const partSize = (id: string) =>
    existsSync(partOf(id)) ? statSync(partOf(id)).size : -1;

  /** A POST whose body stays open: `first` is sent, the rest when the test says so. */
  function openUpload(node: ApiNode, id: string, first: Buffer) {
    const body = new PassThrough();
    const response: Promise<RawResponse | Error> = rawRequest(node.port, {
      method: 'POST',
      path: '/v1/images',
      headers: {
        ...metaHeaders({ id, name: `upload-${id.slice(0, 8)}` }),
        ...as('tenant-n'),
        'content-type': 'application/octet-stream',
      },
      body,
    }).catch((err: Error) => err);
    body.write(first);
    return { body, response };
  }

  /** Until the upload is `saving` with at least `bytes` in its partial file. */
  async function untilSaving(id: string, bytes: number): Promise<void> {
    await waitFor(
      async () => (await statusOf(id)) === 'saving' && partSize(id) >= bytes,
      `image ${id} to be saving with ${bytes} bytes written`,
      15_000,
    );
  }

  it('serve the same images: upload on A, read and delete on B, 10 concurrent uploads', async () => {
    const [a, b] = await Promise.all([
      startNode('pair-a'),
      startNode('pair-b'),
    ]);
    const tenant = as('tenant-p');

    const data = randomBytes(MiB);
    const id = randomUUID();
    const created = await rawRequest(a.port, {
      method: 'POST',
      path: '/v1/images',
      headers: {
        ...metaHeaders({ id, name: 'shared-image' }),
        ...tenant,
        'content-type': 'application/octet-stream',
        'content-length': String(data.length),
      },
      body: data,
    });
    expectStatus(created, 201, a);
    expect(JSON.parse(created.body.toString()).image.status).toBe('active');

    const head = await rawRequest(b.port, {
      method: 'HEAD',
      path: `/v1/images/${id}`,
      headers: tenant,
    });
    expect(head.status).toBe(200);
    expect(head.headers['x-image-meta-status']).toBe('active');
    expect(head.headers['x-image-meta-checksum']).toBe(md5(data));
    const download = await rawRequest(b.port, {
      method: 'GET',
      path: `/v1/images/${id}`,
      headers: tenant,
    });
    expect(download.status).toBe(200);
    expect(download.body.equals(data)).toBe(true);
    const list = await rawRequest(b.port, {
      method: 'GET',
      path: '/v1/images?name=shared-image',
      headers: tenant,
    });
    expect(
      JSON.parse(list.body.toString()).images.map((i: { id: string }) => i.id),
    ).toEqual([id]);

    const del = await rawRequest(b.port, {
      method: 'DELETE',
      path: `/v1/images/${id}`,
      headers: tenant,
    });
    expect(del.status).toBe(200);
    const gone = await rawRequest(a.port, {
      method: 'HEAD',
      path: `/v1/images/${id}`,
      headers: tenant,
    });
    expect(gone.status).toBe(404);
    expect(existsSync(join(storeDir, id))).toBe(false);

    const images = Array.from({ length: 10 }, (_, n) => ({
      id: randomUUID(),
      data: randomBytes(256 * 1024 + n),
      node: n < 5 ? a : b,
    }));
    const answers = await Promise.all(
      images.map((img) =>
        rawRequest(img.node.port, {
          method: 'POST',
          path: '/v1/images',
          headers: {
            ...metaHeaders({ id: img.id, name: 'parallel' }),
            ...tenant,
            'content-type': 'application/octet-stream',
            'content-length': String(img.data.length),
          },
          body: img.data,
        }),
      ),
    );
    answers.forEach((res, n) => {
      expectStatus(res, 201, images[n].node);
      expect(JSON.parse(res.body.toString()).image).toMatchObject({
        id: images[n].id,
        status: 'active',
        size: images[n].data.length,
        checksum: md5(images[n].data),
      });
    });
    const files = readdirSync(storeDir).sort();
    expect(files).toEqual(images.map((img) => img.id).sort());
    for (const img of images) {
      expect(md5(readFileSync(join(storeDir, img.id)))).toBe(md5(img.data));
      // Read back through the other node.
      const other = img.node === a ? b : a;
      const res = await rawRequest(other.port, {
        method: 'GET',
        path: `/v1/images/${img.id}`,
        headers: tenant,
      });
      expect(md5(res.body)).toBe(md5(img.data));
    }
  }, 60_000);

  it('a node SIGKILLed mid-upload kills that upload when it starts again', async () => {
    const a = await startNode('restart-a');
    const id = randomUUID();
    const upload = openUpload(a, id, randomBytes(3 * MiB));
    await untilSaving(id, 3 * MiB);

    expect(await stop(a, 'SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await upload.response).toBeInstanceOf(Error);
    // Nobody cleaned up: the image is still saving and its bytes are on disk.
    expect(await statusOf(id)).toBe('saving');
    expect(partSize(id)).toBeGreaterThan(0);

    const again = await startNode('restart-a');
    await waitFor(
      async () => (await statusOf(id)) === 'killed',
      'the restarted node to kill its orphaned upload',
      5_000,
    );
    expect(existsSync(partOf(id))).toBe(false);
    expect(existsSync(join(storeDir, id))).toBe(false);
    const head = await rawRequest(again.port, {
      method: 'HEAD',
      path: `/v1/images/${id}`,
    });
    expect(head.headers['x-image-meta-status']).toBe('killed');
  }, 60_000);

  it('another node kills the uploads of a node that stopped beating', async () => {
    const [a] = await Promise.all([startNode('stale-a'), startNode('stale-b')]);
    const id = randomUUID();
    const upload = openUpload(a, id, randomBytes(MiB));
    await untilSaving(id, MiB);

    // A live node's slow upload is left alone, however long it takes.
    await sleep((STALE_UPLOAD_SECONDS + 1.5) * 1000);
    expect(await statusOf(id)).toBe('saving');

    await stop(a, 'SIGKILL');
    const killedAt = Date.now();
    expect(await upload.response).toBeInstanceOf(Error);
    await waitFor(
      async () => (await statusOf(id)) === 'killed',
      'the stale upload to be killed by node B',
      (STALE_UPLOAD_SECONDS + HEARTBEAT_INTERVAL + 4) * 1000,
    );
    const took = Date.now() - killedAt;
    // Not before A's last heartbeat (at most 1 s old) had aged STALE_UPLOAD_SECONDS.
    expect(took).toBeGreaterThanOrEqual(
      (STALE_UPLOAD_SECONDS - HEARTBEAT_INTERVAL) * 1000 - 1000,
    );
    expect(took).toBeLessThan(
      (STALE_UPLOAD_SECONDS + HEARTBEAT_INTERVAL + 2) * 1000,
    );
    await waitFor(
      () => !existsSync(partOf(id)),
      'the partial file to be removed',
    );
    expect(existsSync(join(storeDir, id))).toBe(false);
  }, 60_000);

  it('on SIGTERM, finishes uploads within SHUTDOWN_TIMEOUT, kills the rest and exits 0', async () => {
    const node = await startNode('term-c', { SHUTDOWN_TIMEOUT: '2' });
    const quick = { id: randomUUID(), data: randomBytes(2 * MiB) };
    const stuck = { id: randomUUID(), data: randomBytes(MiB) };
    const finishing = openUpload(node, quick.id, quick.data.subarray(0, MiB));
    const hanging = openUpload(node, stuck.id, stuck.data);
    await untilSaving(quick.id, MiB);
    await untilSaving(stuck.id, MiB);

    const termAt = Date.now();
    node.child.kill('SIGTERM');
    // New connections are refused at once.
    await waitFor(
      () =>
        rawRequest(node.port, { method: 'GET', path: '/healthcheck' }).then(
          () => false,
          (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED',
        ),
      'the listener to close',
      1_500,
    );
    finishing.body.end(quick.data.subarray(MiB));
    const done = await finishing.response;
    expect(done).not.toBeInstanceOf(Error);
    expect((done as RawResponse).status).toBe(201);
    expect(
      JSON.parse((done as RawResponse).body.toString()).image,
    ).toMatchObject({
      status: 'active',
      checksum: md5(quick.data),
    });

    const exit = await node.exited;
    const took = Date.now() - termAt;
    expect({ ...exit, log: exit.code === 0 ? '' : node.output() }).toEqual({
      code: 0,
      signal: null,
      log: '',
    });
    expect(took).toBeGreaterThanOrEqual(1_800);
    expect(took).toBeLessThan(7_000);
    await hanging.response;
    hanging.body.destroy();

    expect(await statusOf(stuck.id)).toBe('killed');
    expect(existsSync(partOf(stuck.id))).toBe(false);
    expect(existsSync(join(storeDir, stuck.id))).toBe(false);
    expect(await statusOf(quick.id)).toBe('active');
    expect(md5(readFileSync(join(storeDir, quick.id)))).toBe(md5(quick.data));
    expect(node.output()).toMatch(
      /Killed 1 upload\(s\) still running at shutdown/,
    );
  }, 60_000);
});
