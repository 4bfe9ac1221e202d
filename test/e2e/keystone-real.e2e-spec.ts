import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { md5 } from '../support/image-assertions.js';
import { glanceCliAvailable } from '../support/glance-cli.js';
import { createTestApp, type TestApp } from '../support/test-app.js';
import { TEST_DATABASE } from '../support/test-database.js';
import { clientEnv } from '../support/client-env.js';

const run = promisify(execFile);

// Needs Debian's python3-glanceclient; REQUIRE_GLANCE_CLIENT=1 (.ci/run) makes its absence an error.
const hasGlance = glanceCliAvailable();

/** KEY=VALUE lines written by keystone.sh start (started by the global setup). */
function keystoneEnv(): Record<string, string> {
  const file = process.env.TEST_KEYSTONE_ENV;
  if (!file)
    throw new Error(
      'TEST_KEYSTONE_ENV is not set: the global setup starts Keystone',
    );
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  return env;
}

/** A TCP proxy in front of Keystone that the test can cut, as if Keystone stopped. */
async function cuttableProxy(
  target: URL,
): Promise<{ url: string; cut(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async cut() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The image endpoint of Keystone's catalog: the app must listen exactly there. */
async function listenOn(t: TestApp, port: number): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await t.app.listen(port, '127.0.0.1');
      return;
    } catch (err) {
      // Another test run may hold the catalog's port for a moment.
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 20)
        throw err;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

// A real Keystone changes nothing in how images are stored, so this runs once
// (SQLite) instead of three times; the global setup starts Keystone for that run only.
describe.runIf(TEST_DATABASE === 'sqlite')(
  'AUTH_STRATEGY=keystone against a real Keystone',
  () => {
    let ks: Record<string, string> = {};
    const DATA = randomBytes(64 * 1024 + 9);
    let t: TestApp;
    let proxy: Awaited<ReturnType<typeof cuttableProxy>>;
    let dataFile: string;

    /** A project-scoped token and its project id, from Keystone's REST API. */
    async function issueToken(user: string, password: string, project: string) {
      const res = await fetch(`${ks.KEYSTONE_URL}/v3/auth/tokens`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          auth: {
            identity: {
              methods: ['password'],
              password: {
                user: { name: user, domain: { name: 'Default' }, password },
              },
            },
            scope: { project: { name: project, domain: { name: 'Default' } } },
          },
        }),
      });
      expect(res.status).toBe(201);
      const body = (await res.json()) as { token: { project: { id: string } } };
      return {
        token: res.headers.get('x-subject-token')!,
        projectId: body.token.project.id,
      };
    }
    const demo = () =>
      issueToken(
        ks.KEYSTONE_DEMO_USER,
        ks.KEYSTONE_DEMO_PASSWORD,
        ks.KEYSTONE_DEMO_PROJECT,
      );
    const other = () =>
      issueToken(
        ks.KEYSTONE_OTHER_USER,
        ks.KEYSTONE_OTHER_PASSWORD,
        ks.KEYSTONE_OTHER_PROJECT,
      );

    /** `glance` with password auth: the image endpoint comes from the token's catalog. */
    async function glance(...args: string[]): Promise<string> {
      const env = clientEnv();
      const auth = [
        '--os-image-api-version',
        '1',
        '--os-auth-url',
        ks.KEYSTONE_AUTH_URL,
        '--os-username',
        ks.KEYSTONE_DEMO_USER,
        '--os-password',
        ks.KEYSTONE_DEMO_PASSWORD,
        '--os-project-name',
        ks.KEYSTONE_DEMO_PROJECT,
        '--os-user-domain-name',
        'Default',
        '--os-project-domain-name',
        'Default',
      ];
      try {
        // stdin closed: glanceclient reads a non-TTY stdin as image data.
        const { stdout } = await run(
          'bash',
          ['-c', 'exec "$@" <&-', 'glance', 'glance', ...auth, ...args],
          {
            env,
            timeout: 30_000,
          },
        );
        return stdout;
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string; message: string };
        throw new Error(
          `glance ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`,
        );
      }
    }

    beforeAll(async () => {
      ks = keystoneEnv();
      proxy = await cuttableProxy(new URL(ks.KEYSTONE_URL));
      t = await createTestApp({
        AUTH_STRATEGY: 'keystone',
        KEYSTONE_URL: proxy.url,
        KEYSTONE_SERVICE_USER: ks.KEYSTONE_SERVICE_USER,
        KEYSTONE_SERVICE_PASSWORD: ks.KEYSTONE_SERVICE_PASSWORD,
        KEYSTONE_SERVICE_PROJECT: ks.KEYSTONE_SERVICE_PROJECT,
      });
      await listenOn(t, Number(new URL(ks.KEYSTONE_IMAGE_ENDPOINT).port));
      dataFile = join(t.dir, 'cli.img');
      writeFileSync(dataFile, DATA);
    });
    afterAll(async () => {
      await t?.close();
      await proxy?.cut().catch(() => undefined);
    });

    it.skipIf(!hasGlance)(
      "the glance CLI finds the image endpoint in the catalog; the caller's project owns the image; other tenants get 404",
      async () => {
        const created = await glance(
          'image-create',
          '--name',
          'ks-real',
          '--disk-format',
          'raw',
          '--container-format',
          'bare',
          '--file',
          dataFile,
        );
        const id = /\|\s*id\s*\|\s*([0-9a-f-]{36})\s*\|/.exec(created)?.[1];
        expect(id).toBeDefined();
        expect(await glance('image-list')).toContain(id);

        const d = await demo();
        const head = await request(t.http)
          .head(`/v1/images/${id}`)
          .set('X-Auth-Token', d.token)
          .expect(200);
        expect(head.headers['x-image-meta-owner']).toBe(d.projectId);
        expect(head.headers['x-image-meta-checksum']).toBe(md5(DATA));
        expect(head.headers['x-image-meta-is_public']).toBe('False');

        const o = await other();
        expect(o.projectId).not.toBe(d.projectId);
        // Identity headers next to a real token change nothing.
        const asOther = {
          'X-Auth-Token': o.token,
          'X-Tenant-Id': d.projectId,
          'X-Roles': 'admin',
        };
        expect(
          (await request(t.http).head(`/v1/images/${id}`).set(asOther)).status,
        ).toBe(404);
        expect(
          (await request(t.http).get(`/v1/images/${id}`).set(asOther)).status,
        ).toBe(404);
        expect(
          (await request(t.http).delete(`/v1/images/${id}`).set(asOther))
            .status,
        ).toBe(404);
        const listed = await request(t.http)
          .get('/v1/images/detail')
          .set(asOther)
          .expect(200);
        expect(
          listed.body.images.map((i: { id: string }) => i.id),
        ).not.toContain(id);
      },
    );

    it('a token Keystone does not know, or has revoked, is 401', async () => {
      const res = await request(t.http)
        .get('/v1/images')
        .set('X-Auth-Token', 'gAAAAABnot-a-real-token');
      expect(res.status).toBe(401);
      const admin = await issueToken(
        ks.KEYSTONE_ADMIN_USER,
        ks.KEYSTONE_ADMIN_PASSWORD,
        ks.KEYSTONE_ADMIN_PROJECT,
      );
      const victim = await demo();
      const revoke = await fetch(`${ks.KEYSTONE_URL}/v3/auth/tokens`, {
        method: 'DELETE',
        headers: {
          'X-Auth-Token': admin.token,
          'X-Subject-Token': victim.token,
        },
      });
      expect(revoke.status).toBe(204);
      expect(
        (
          await request(t.http)
            .get('/v1/images')
            .set('X-Auth-Token', victim.token)
        ).status,
      ).toBe(401);
    });

    it("Keystone's admin role makes an admin: it sees and may delete another project's private image", async () => {
      const d = await demo();
      const image = await request(t.http)
        .post('/v1/images')
        .set({ 'X-Auth-Token': d.token, 'x-image-meta-name': 'demo-private' })
        .expect(201);
      const admin = await issueToken(
        ks.KEYSTONE_ADMIN_USER,
        ks.KEYSTONE_ADMIN_PASSWORD,
        ks.KEYSTONE_ADMIN_PROJECT,
      );
      const id = image.body.image.id as string;
      expect(
        (
          await request(t.http)
            .head(`/v1/images/${id}`)
            .set('X-Auth-Token', admin.token)
        ).status,
      ).toBe(200);
      await request(t.http)
        .delete(`/v1/images/${id}`)
        .set('X-Auth-Token', admin.token)
        .expect(200);
    });

    // Last: it cuts this app's way to Keystone for good.
    it('Keystone stopped: new tokens get 503 (never fail-open)', async () => {
      const fresh = await other();
      proxy.cut().catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const res = await request(t.http)
        .get('/v1/images')
        .set('X-Auth-Token', fresh.token);
      expect(res.status).toBe(503);
      expect(res.text).toContain('identity service');
      const post = await request(t.http)
        .post('/v1/images')
        .set({ 'X-Auth-Token': fresh.token, 'x-image-meta-name': 'down' });
      expect(post.status).toBe(503);
    });
  },
);
