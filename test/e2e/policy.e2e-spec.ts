import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectError, waitFor } from '../support/image-assertions.js';
import { createImage, metaHeaders } from '../support/image-builder.js';
import { ADMIN, as, createTestApp, type TestApp } from '../support/test-app.js';

type Auth = Record<string, string>;

const BASE_POLICY: Record<string, string> = JSON.parse(
  readFileSync(join(import.meta.dirname, '../fixtures/policy.json'), 'utf8'),
);

const ACTIONS = [
  'get_images',
  'get_image',
  'download_image',
  'add_image',
  'modify_image',
  'delete_image',
  'get_members',
  'modify_member',
  'delete_member',
  'publicize_image',
  'upload_image',
  'copy_from',
  'set_image_location',
] as const;
type Action = (typeof ACTIONS)[number];

/** Tenant A with the member role, plus a role denying `action` (see policyDenyingEach). */
const denied = (action: Action): Auth =>
  as('tenant-a', `member,deny_${action}`);
const MEMBER = as('tenant-a');

/** Each action refused to callers holding role deny_<action>: one file covers them all. */
function policyDenyingEach(): string {
  const rules = { ...BASE_POLICY };
  for (const action of ACTIONS) rules[action] = `not role:deny_${action}`;
  return JSON.stringify(rules, null, 2);
}

const DATA = Buffer.from('policy test bytes');

/** A loopback HTTP server holding image bytes for copy-from and locations. */
async function startSource(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, {
      'Content-Type': 'application/octet-stream',
      'Content-Length': DATA.length,
    });
    res.end(req.method === 'HEAD' ? undefined : DATA);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/image.raw`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('POLICY_FILE denying one action at a time', () => {
  let t: TestApp;
  let dir: string;
  let source: Awaited<ReturnType<typeof startSource>>;
  let image: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'glance-policy-'));
    const file = join(dir, 'policy.json');
    writeFileSync(file, policyDenyingEach());
    source = await startSource();
    t = await createTestApp({
      POLICY_FILE: file,
      EXTERNAL_SOURCE_ALLOWLIST: '127.0.0.1',
    });
    image = (await createImage(t, { name: 'existing', data: DATA }, MEMBER)).id;
  });
  afterAll(async () => {
    await t?.close();
    await source?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const queued = async () =>
    (await createImage(t, { name: 'queued' }, MEMBER)).id;
  const active = async () =>
    (await createImage(t, { name: 'active', data: DATA }, MEMBER)).id;
  const post = (auth: Auth, headers: Record<string, string> = {}) =>
    request(t.http)
      .post('/v1/images')
      .set(auth)
      .set(metaHeaders({ name: 'new' }))
      .set(headers);

  /** Requests needing each action, and the status they get when it is allowed. */
  const CASES: [
    Action,
    string,
    (auth: Auth) => Promise<request.Response>,
    number,
  ][] = [
    [
      'get_images',
      'GET /v1/images',
      (a) => request(t.http).get('/v1/images').set(a),
      200,
    ],
    [
      'get_images',
      'GET /v1/images/detail',
      (a) => request(t.http).get('/v1/images/detail').set(a),
      200,
    ],
    [
      'get_image',
      'HEAD',
      (a) => request(t.http).head(`/v1/images/${image}`).set(a),
      200,
    ],
    [
      'get_image',
      'GET',
      (a) => request(t.http).get(`/v1/images/${image}`).set(a),
      200,
    ],
    [
      'download_image',
      'GET',
      (a) => request(t.http).get(`/v1/images/${image}`).set(a),
      200,
    ],
    ['add_image', 'POST', (a) => post(a), 201],
    [
      'modify_image',
      'PUT metadata',
      (a) =>
        request(t.http)
          .put(`/v1/images/${image}`)
          .set(a)
          .set('x-image-meta-min_ram', '1'),
      200,
    ],
    [
      'delete_image',
      'DELETE',
      async (a) =>
        request(t.http)
          .delete(`/v1/images/${await active()}`)
          .set(a),
      200,
    ],
    [
      'get_members',
      'GET members',
      (a) => request(t.http).get(`/v1/images/${image}/members`).set(a),
      200,
    ],
    [
      'modify_member',
      'PUT member',
      (a) => request(t.http).put(`/v1/images/${image}/members/tenant-b`).set(a),
      204,
    ],
    [
      'modify_member',
      'PUT members',
      (a) =>
        request(t.http)
          .put(`/v1/images/${image}/members`)
          .set(a)
          .set('Content-Type', 'application/json')
          .send('{"memberships": [{"member_id": "tenant-b"}]}'),
      204,
    ],
    [
      'delete_member',
      'DELETE member',
      async (a) => {
        await request(t.http)
          .put(`/v1/images/${image}/members/tenant-d`)
          .set(MEMBER)
          .expect(204);
        return request(t.http)
          .delete(`/v1/images/${image}/members/tenant-d`)
          .set(a);
      },
      204,
    ],
    [
      'publicize_image',
      'POST is_public=true',
      (a) => post(a, { 'x-image-meta-is_public': 'true' }),
      201,
    ],
    [
      'upload_image',
      'POST with data',
      (a) => post(a).set('Content-Type', 'application/octet-stream').send(DATA),
      201,
    ],
    [
      'upload_image',
      'PUT with data',
      async (a) =>
        request(t.http)
          .put(`/v1/images/${await queued()}`)
          .set(a)
          .set('Content-Type', 'application/octet-stream')
          .send(DATA),
      200,
    ],
    [
      'copy_from',
      'POST with copy-from',
      (a) => post(a, { 'x-glance-api-copy-from': source.url }),
      201,
    ],
    [
      'set_image_location',
      'POST with a location',
      (a) => post(a, { 'x-image-meta-location': source.url }),
      201,
    ],
    [
      'set_image_location',
      'PUT a location on a queued image',
      async (a) =>
        request(t.http)
          .put(`/v1/images/${await queued()}`)
          .set(a)
          .set('x-image-meta-location', source.url),
      200,
    ],
  ];

  it.each(CASES)('%s: %s', async (action, what, send, ok) => {
    const res = await send(denied(action));
    // HEAD answers carry no body.
    if (what === 'HEAD') expect(res.status).toBe(403);
    else
      expectError(
        res,
        403,
        `You are not authorized to complete ${action} action.`,
      );
    expect((await send(MEMBER)).status).toBe(ok);
    // Roles denying other actions do not get in the way.
    const other: Action =
      action === 'copy_from' ? 'delete_member' : 'copy_from';
    expect((await send(denied(other))).status).toBe(ok);
  });

  it('HEAD needs get_image only, not download_image', async () => {
    expect(
      (
        await request(t.http)
          .head(`/v1/images/${image}`)
          .set(denied('download_image'))
      ).status,
    ).toBe(200);
  });

  it('a denied POST creates nothing', async () => {
    for (const [action, headers] of [
      ['publicize_image', { 'x-image-meta-is_public': 'true' }],
      ['copy_from', { 'x-glance-api-copy-from': source.url }],
      ['set_image_location', { 'x-image-meta-location': source.url }],
    ] as const) {
      const id = randomUUID();
      const res = await post(denied(action), {
        ...headers,
        'x-image-meta-id': id,
      });
      expect(res.status).toBe(403);
      expect(
        (await request(t.http).head(`/v1/images/${id}`).set(ADMIN)).status,
      ).toBe(404);
    }
  });

  describe('content-dependent actions are enforced only when the request needs them', () => {
    it('publicize_image: private creates and is_public=false updates are fine; making public is not', async () => {
      const auth = denied('publicize_image');
      expect(
        (await post(auth, { 'x-image-meta-is_public': 'false' })).status,
      ).toBe(201);
      const id = await queued();
      expect(
        (
          await request(t.http)
            .put(`/v1/images/${id}`)
            .set(auth)
            .set('x-image-meta-is_public', 'false')
        ).status,
      ).toBe(200);
      const res = await request(t.http)
        .put(`/v1/images/${id}`)
        .set(auth)
        .set('x-image-meta-is_public', 'true');
      expectError(res, 403, 'publicize_image');
      expect(
        (await request(t.http).head(`/v1/images/${id}`).set(MEMBER)).headers[
          'x-image-meta-is_public'
        ],
      ).toBe('False');
    });

    it('upload_image: reserving and metadata updates are fine; data and copy-from are not', async () => {
      const auth = denied('upload_image');
      const res = await post(auth);
      expect(res.status).toBe(201);
      const id = res.body.image.id;
      expect(
        (
          await request(t.http)
            .put(`/v1/images/${id}`)
            .set(auth)
            .set('x-image-meta-name', 'renamed')
        ).status,
      ).toBe(200);
      const upload = await request(t.http)
        .put(`/v1/images/${id}`)
        .set(auth)
        .set('Content-Type', 'application/octet-stream')
        .send(DATA);
      expectError(upload, 403, 'upload_image');
      expectError(
        await post(auth, { 'x-glance-api-copy-from': source.url }),
        403,
        'upload_image',
      );
      expect(
        (await request(t.http).head(`/v1/images/${id}`).set(MEMBER)).headers[
          'x-image-meta-status'
        ],
      ).toBe('queued');
    });

    it('copy_from: uploads and locations are fine without it', async () => {
      const auth = denied('copy_from');
      expect(
        (
          await post(auth)
            .set('Content-Type', 'application/octet-stream')
            .send(DATA)
        ).status,
      ).toBe(201);
      expect(
        (await post(auth, { 'x-image-meta-location': source.url })).status,
      ).toBe(201);
      const copied = await post(MEMBER, {
        'x-glance-api-copy-from': source.url,
      });
      expect(copied.status).toBe(201);
      await waitFor(
        async () =>
          (
            await request(t.http)
              .head(`/v1/images/${copied.body.image.id}`)
              .set(MEMBER)
          ).headers['x-image-meta-status'] === 'active',
        'the copy to finish',
      );
    });

    it('set_image_location: uploads and copy-from are fine without it', async () => {
      const auth = denied('set_image_location');
      expect(
        (
          await post(auth)
            .set('Content-Type', 'application/octet-stream')
            .send(DATA)
        ).status,
      ).toBe(201);
      expect(
        (await post(auth, { 'x-glance-api-copy-from': source.url })).status,
      ).toBe(201);
      const id = await queued();
      expectError(
        await request(t.http)
          .put(`/v1/images/${id}`)
          .set(auth)
          .set('x-image-meta-location', source.url),
        403,
        'set_image_location',
      );
    });
  });
});

describe('POLICY_FILE changes apply without a restart', () => {
  let t: TestApp;
  let dir: string;
  let file: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'glance-policy-'));
    file = join(dir, 'policy.json');
    writeFileSync(file, JSON.stringify(BASE_POLICY));
    t = await createTestApp({ POLICY_FILE: file });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The file is looked at at most once a second. */
  const afterReloadWindow = () => new Promise((r) => setTimeout(r, 1100));
  const deleteAs = async (auth: Auth) =>
    request(t.http)
      .delete(`/v1/images/${(await createImage(t, { name: 'd' }, auth)).id}`)
      .set(auth);

  it('a new rule applies, a broken edit keeps the last good policy, a fixed file applies again', async () => {
    expect((await deleteAs(MEMBER)).status).toBe(200);

    writeFileSync(
      file,
      JSON.stringify({ ...BASE_POLICY, delete_image: 'role:admin' }),
    );
    await afterReloadWindow();
    expectError(
      await deleteAs(MEMBER),
      403,
      'You are not authorized to complete delete_image action.',
    );
    expect((await deleteAs(as('tenant-a', 'admin'))).status).toBe(200);

    writeFileSync(
      file,
      '{"delete_image": "role:admin", "add_image": "role:nobody",',
    );
    await afterReloadWindow();
    expect((await deleteAs(MEMBER)).status).toBe(403);
    expect((await request(t.http).get('/v1/images').set(MEMBER)).status).toBe(
      200,
    );

    writeFileSync(
      file,
      JSON.stringify({ ...BASE_POLICY, add_image: 'role:admin' }),
    );
    await afterReloadWindow();
    expectError(
      await request(t.http).post('/v1/images').set(MEMBER).set(metaHeaders()),
      403,
      'add_image',
    );
    expect((await deleteAs(as('tenant-a', 'admin,member'))).status).toBe(200);
  });

  it('an invalid POLICY_FILE at boot stops the service, naming the file', async () => {
    const bad = join(dir, 'bad-policy.json');
    writeFileSync(bad, '{"get_images": "role:"');
    await expect(createTestApp({ POLICY_FILE: bad })).rejects.toThrow(bad);
  });
});
