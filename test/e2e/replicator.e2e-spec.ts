import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as, createTestApp, type TestApp } from '../support/test-app.js';
import { TEST_DATABASE } from '../support/test-database.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';

function hasReplicator(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import glance.cmd.replicator'], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}
const available = hasReplicator();
if (!available && process.env.REQUIRE_OPENSTACK_CLIENTS === '1') {
  throw new Error(
    'REQUIRE_OPENSTACK_CLIENTS=1 but python3-glance (glance.cmd.replicator) is missing',
  );
}

/** A header value carrying UTF-8 bytes, as glanceclient sends it. */
const utf8 = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
const byText = (a: string, b: string) => a.localeCompare(b);
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const sha512 = (b: Buffer) => createHash('sha512').update(b).digest('hex');
const A = as('tenant-a');
const DATA = randomBytes(200 * 1024 + 3);
/** The replicator's `load` reads image files in text mode: only text survives it. */
const TEXT = Buffer.from('plain ascii image\n'.repeat(500));
// Its Python 3 port sends virtual_size: None as a header and fails: leave it out.
const DONT_REPLICATE =
  'created_at date deleted_at location updated_at virtual_size';

function port(t: TestApp): number {
  return (t.app.getHttpServer() as { address(): AddressInfo }).address().port;
}

const meta = (name: string, extra: Record<string, string> = {}) => ({
  'x-image-meta-name': name,
  'x-image-meta-disk_format': 'raw',
  'x-image-meta-container_format': 'bare',
  ...extra,
});

function bytes(t: TestApp, id: string): Promise<Buffer> {
  return request(t.http)
    .get(`/v1/images/${id}`)
    .buffer(true)
    .parse((r, cb) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => cb(null, Buffer.concat(chunks)));
    })
    .expect(200)
    .then((res) => res.body as Buffer);
}

// os_hash_* input rules are plain request validation and glance-replicator speaks
// HTTP only: nothing here depends on the database, so it runs once (SQLite).
describe.runIf(TEST_DATABASE === 'sqlite')(
  'os_hash_algo / os_hash_value as input',
  () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp();
    });
    afterAll(async () => {
      await t?.close();
    });
    const upload = (headers: Record<string, string>, data = DATA) =>
      request(t.http)
        .post('/v1/images')
        .set({
          ...A,
          ...meta('h'),
          'Content-Type': 'application/octet-stream',
          ...headers,
        })
        .send(data);
    const status = async (id: string) =>
      (await request(t.http).head(`/v1/images/${id}`)).headers[
        'x-image-meta-status'
      ];

    it('accepts the right sha512 and refuses a wrong one (image killed)', async () => {
      const ok = await upload({
        'x-image-meta-os_hash_algo': 'sha512',
        'x-image-meta-os_hash_value': sha512(DATA).toUpperCase(),
      }).expect(201);
      expect(ok.body.image).toMatchObject({
        status: 'active',
        os_hash_value: sha512(DATA),
      });
      const bad = await upload({ 'x-image-meta-os_hash_value': sha512(TEXT) });
      expect(bad.status).toBe(400);
      expect(bad.text).toContain('Supplied os_hash_value');
    });

    it('refuses other algorithms and malformed values before reading data', async () => {
      expect(
        (await upload({ 'x-image-meta-os_hash_algo': 'md5' })).text,
      ).toContain("Unsupported os_hash_algo 'md5'");
      expect(
        (await upload({ 'x-image-meta-os_hash_value': 'abc' })).status,
      ).toBe(400);
    });

    it('checks a value given at reserve time against the later upload', async () => {
      const reserved = await request(t.http)
        .post('/v1/images')
        .set({ ...A, ...meta('r'), 'x-image-meta-os_hash_value': sha512(TEXT) })
        .expect(201);
      const id = reserved.body.image.id;
      const put = await request(t.http)
        .put(`/v1/images/${id}`)
        .set({ ...A, 'Content-Type': 'application/octet-stream' })
        .send(DATA);
      expect(put.status).toBe(400);
      expect(await status(id)).toBe('killed');
    });

    it('is immutable for non-admins once active, like checksum', async () => {
      const id = (await upload({}).expect(201)).body.image.id;
      const change = await request(t.http)
        .put(`/v1/images/${id}`)
        .set({ ...A, 'x-image-meta-os_hash_value': sha512(TEXT) });
      expect(change.status).toBe(403);
      await request(t.http)
        .put(`/v1/images/${id}`)
        .set({
          ...A,
          'x-image-meta-os_hash_value': sha512(DATA),
          'x-image-meta-os_hash_algo': 'sha512',
        })
        .expect(200);
    });
  },
);

// Needs Debian's python3-glance (.ci/run installs it); see above for why SQLite only.
describe.runIf(TEST_DATABASE === 'sqlite' && available)(
  'glance-replicator between two services',
  () => {
    let source: TestApp;
    let target: TestApp;
    let fresh: TestApp;
    let dumpDir: string;
    const ids: Record<string, string> = {};

    async function replicator(...args: string[]): Promise<string> {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        NO_PROXY: '*',
        no_proxy: '*',
      };
      delete env.PYTHONPATH;
      try {
        const { stdout, stderr } = await run(
          PYTHON,
          ['-c', 'from glance.cmd.replicator import main; main()', ...args],
          { env, timeout: 30_000 },
        );
        return stdout + stderr;
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string; message: string };
        throw new Error(
          `replicator ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`,
        );
      }
    }

    beforeAll(async () => {
      [source, target, fresh] = await Promise.all([
        createTestApp(),
        createTestApp(),
        createTestApp(),
      ]);
      for (const app of [source, target, fresh])
        await app.app.listen(0, '127.0.0.1');
      dumpDir = join(source.dir, 'dump');
      mkdirSync(dumpDir);
      const add = async (
        name: string,
        data: Buffer,
        extra: Record<string, string>,
      ) =>
        (
          await request(source.http)
            .post('/v1/images')
            .set({
              ...A,
              ...meta(name, extra),
              'Content-Type': 'application/octet-stream',
            })
            .send(data)
            .expect(201)
        ).body.image.id as string;
      ids.private = await add('private', DATA, {
        'x-image-meta-property-os_distro': 'cirros',
        'x-image-meta-min_ram': '64',
      });
      ids.public = await add('public', TEXT, {
        'x-image-meta-is_public': 'true',
        'x-image-meta-property-note': utf8('ünicode'),
      });
      ids.queued = (
        await request(source.http)
          .post('/v1/images')
          .set({ ...A, ...meta('queued') })
          .expect(201)
      ).body.image.id;
    });
    afterAll(async () => {
      await Promise.all([source, target, fresh].map((app) => app?.close()));
    });

    it('size, livecopy, compare, dump and load', async () => {
      const from = `127.0.0.1:${port(source)}`;
      const to = `127.0.0.1:${port(target)}`;
      expect(await replicator('size', from)).toContain(
        `Total size is ${DATA.length + TEXT.length} bytes`,
      );

      await replicator('-D', DONT_REPLICATE, 'livecopy', from, to);
      const list = async (app: TestApp) =>
        (await request(app.http).get('/v1/images/detail?is_public=None')).body
          .images as Record<string, unknown>[];
      const pick = (i: Record<string, unknown>) => {
        const { created_at: _c, updated_at: _u, ...rest } = i;
        return rest;
      };
      const copied = (await list(target)).map(pick);
      const originals = (await list(source))
        .filter((i) => i.status === 'active')
        .map(pick);
      // Same ids, names, owner, formats, sizes, checksums, os_hash_*, properties, visibility.
      expect(
        copied.sort((a, b) => String(a.id).localeCompare(String(b.id))),
      ).toEqual(
        originals.sort((a, b) => String(a.id).localeCompare(String(b.id))),
      );
      expect(copied.map((i) => String(i.id)).sort(byText)).toEqual(
        [ids.private, ids.public].sort(byText),
      );
      expect(copied.find((i) => i.id === ids.private)).toMatchObject({
        owner: 'tenant-a',
        checksum: md5(DATA),
        os_hash_value: sha512(DATA),
        min_ram: 64,
        properties: { os_distro: 'cirros' },
      });
      // The replicator re-sends 'ünicode' in latin1: still the same text on the target.
      expect(copied.find((i) => i.id === ids.public)?.properties).toEqual({
        note: 'ünicode',
      });
      expect((await bytes(target, ids.private)).equals(DATA)).toBe(true);
      expect((await bytes(target, ids.public)).equals(TEXT)).toBe(true);

      // compare finds nothing missing (it still logs type-only "differences": its own bug).
      expect(
        await replicator('-D', DONT_REPLICATE, 'compare', from, to),
      ).not.toContain('missing');

      await replicator('dump', from, dumpDir);
      expect(
        readFileSync(join(dumpDir, `${ids.private}.img`)).equals(DATA),
      ).toBe(true);
      expect(
        JSON.parse(readFileSync(join(dumpDir, ids.queued), 'utf8')),
      ).toMatchObject({
        name: 'queued',
        status: 'queued',
      });

      // load opens image files in text mode: binary data cannot pass, so load only the text one.
      rmSync(join(dumpDir, `${ids.private}.img`));
      expect(readdirSync(dumpDir)).toContain(`${ids.public}.img`);
      await replicator(
        '-D',
        DONT_REPLICATE,
        'load',
        `127.0.0.1:${port(fresh)}`,
        dumpDir,
      );
      const loaded = (await list(fresh)).map((i) => i.id);
      expect(loaded).toEqual([ids.public]);
      expect((await bytes(fresh, ids.public)).equals(TEXT)).toBe(true);
    });
  },
);
