import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectError } from '../support/image-assertions.js';
import { createImage, metaHeaders } from '../support/image-builder.js';
import {
  keystoneEnv,
  startFakeKeystone,
  type FakeKeystone,
} from '../support/fake-keystone.js';
import { as, createTestApp, type TestApp } from '../support/test-app.js';

type Auth = Record<string, string>;

/** Headers an auth proxy (keystonemiddleware) sets for a validated user. */
function confirmed(
  tenant: string,
  roles = 'member',
  user = `${tenant}-user`,
): Auth {
  return { ...as(tenant, roles, user), 'X-Identity-Status': 'Confirmed' };
}

function token(t: string): Auth {
  return { 'X-Auth-Token': t };
}

/** Ids of every image the caller may list (public and private). */
async function listedIds(t: TestApp, auth: Auth): Promise<string[]> {
  const res = await request(t.http)
    .get('/v1/images/detail?is_public=None')
    .set(auth);
  expect(res.status).toBe(200);
  return res.body.images.map((i: { id: string }) => i.id);
}

describe('AUTH_STRATEGY=trusted-headers', () => {
  let t: TestApp;
  let privateOfB: string;
  beforeAll(async () => {
    t = await createTestApp({ AUTH_STRATEGY: 'trusted-headers' });
    privateOfB = (
      await createImage(t, { name: 'b-private' }, confirmed('tenant-b'))
    ).id;
  });
  afterAll(async () => t?.close());

  it('honours the identity of a Confirmed request: its tenant owns what it creates', async () => {
    const image = await createImage(t, { name: 'mine' }, confirmed('tenant-a'));
    expect(image.owner).toBe('tenant-a');
    const head = await request(t.http)
      .head(`/v1/images/${image.id}`)
      .set(confirmed('tenant-a'));
    expect(head.status).toBe(200);
    expect(
      (
        await request(t.http)
          .head(`/v1/images/${image.id}`)
          .set(confirmed('tenant-c'))
      ).status,
    ).toBe(404);
  });

  it('a Confirmed admin role is an admin', async () => {
    const res = await request(t.http)
      .head(`/v1/images/${privateOfB}`)
      .set(confirmed('tenant-a', 'admin'));
    expect(res.status).toBe(200);
    expect(await listedIds(t, confirmed('tenant-a', 'Admin'))).toContain(
      privateOfB,
    );
  });

  it.each([
    ['no X-Identity-Status', {}],
    ['X-Identity-Status: Invalid', { 'X-Identity-Status': 'Invalid' }],
    [
      'X-Identity-Status: confirmed (wrong case)',
      { 'X-Identity-Status': 'confirmed' },
    ],
    ['X-Identity-Status empty', { 'X-Identity-Status': ' ' }],
  ])('%s is 401 even with admin identity headers', async (_name, status) => {
    for (const send of [
      () => request(t.http).get('/v1/images'),
      () => request(t.http).head(`/v1/images/${privateOfB}`),
      () =>
        request(t.http)
          .post('/v1/images')
          .set(metaHeaders({ name: 'x' })),
      () => request(t.http).delete(`/v1/images/${privateOfB}`),
    ]) {
      const res = await send().set(as('tenant-a', 'admin')).set(status);
      expect(res.status).toBe(401);
    }
  });

  it('X-Service-* headers are ignored: they neither authenticate nor add roles', async () => {
    const service = {
      'X-Service-Identity-Status': 'Confirmed',
      'X-Service-Roles': 'admin',
      'X-Service-Project-Id': 'tenant-b',
      'X-Service-User-Id': 'glance',
    };
    const unauthenticated = await request(t.http)
      .get('/v1/images')
      .set(as('tenant-a'))
      .set(service);
    expect(unauthenticated.status).toBe(401);

    const member = { ...confirmed('tenant-a'), ...service };
    expect(
      (await request(t.http).head(`/v1/images/${privateOfB}`).set(member))
        .status,
    ).toBe(404);
    expect(await listedIds(t, member)).not.toContain(privateOfB);
    const created = await createImage(
      t,
      { name: 'svc', headers: { 'x-image-meta-owner': 'tenant-b' } },
      member,
    );
    expect(created.owner).toBe('tenant-a');
  });

  it('a Confirmed request without X-Roles is not an admin (only noauth treats it so)', async () => {
    const noRoles = {
      'X-Identity-Status': 'Confirmed',
      'X-Tenant-Id': 'tenant-a',
      'X-User-Id': 'u',
    };
    expect(
      (await request(t.http).head(`/v1/images/${privateOfB}`).set(noRoles))
        .status,
    ).toBe(404);
    expect(
      (await request(t.http).delete(`/v1/images/${privateOfB}`).set(noRoles))
        .status,
    ).toBe(404);
  });

  it('X-Project-Id is accepted as the tenant', async () => {
    const auth = {
      'X-Identity-Status': 'Confirmed',
      'X-Project-Id': 'tenant-p',
      'X-Roles': 'member',
    };
    expect((await createImage(t, { name: 'p' }, auth)).owner).toBe('tenant-p');
  });
});

describe('AUTH_STRATEGY=keystone (fake Keystone)', () => {
  let ks: FakeKeystone;
  let t: TestApp;
  beforeAll(async () => {
    ks = await startFakeKeystone();
    t = await createTestApp(keystoneEnv(ks.url));
  });
  afterAll(async () => {
    await t?.close();
    await ks?.close();
  });

  it("a valid token's project owns the images it creates; identity headers are ignored", async () => {
    const tok = ks.issueToken({ projectId: 'proj-1', userId: 'user-1' });
    const image = await createImage(
      t,
      { name: 'ks-image', headers: { 'x-image-meta-owner': 'proj-9' } },
      { ...token(tok), ...as('proj-9', 'admin') },
    );
    expect(image.owner).toBe('proj-1');
    const other = ks.issueToken({ projectId: 'proj-2' });
    expect(
      (await request(t.http).head(`/v1/images/${image.id}`).set(token(tok)))
        .status,
    ).toBe(200);
    // Claiming proj-1 or admin in headers gets proj-2 nothing.
    const spoofed = { ...token(other), ...as('proj-1', 'admin') };
    expect(
      (await request(t.http).head(`/v1/images/${image.id}`).set(spoofed))
        .status,
    ).toBe(404);
    expect(
      (await request(t.http).delete(`/v1/images/${image.id}`).set(spoofed))
        .status,
    ).toBe(404);
  });

  it('roles from the token make an admin', async () => {
    const owner = ks.issueToken({ projectId: 'proj-3' });
    const image = await createImage(t, { name: 'p3' }, token(owner));
    const admin = ks.issueToken({
      projectId: 'proj-admin',
      roles: ['Admin', 'member'],
    });
    expect(
      (await request(t.http).head(`/v1/images/${image.id}`).set(token(admin)))
        .status,
    ).toBe(200);
    expect(await listedIds(t, token(admin))).toContain(image.id);
    expect(
      (await request(t.http).delete(`/v1/images/${image.id}`).set(token(admin)))
        .status,
    ).toBe(200);
  });

  it.each([
    ['no token', () => ({})],
    ['an unknown token', () => token('gAAAAnot-a-real-token')],
    ['an expired token', () => token(ks.issueToken({ expiresInMs: -1000 }))],
    [
      'a revoked token',
      () => {
        const tok = ks.issueToken();
        ks.revoke(tok);
        return token(tok);
      },
    ],
    [
      'a token with a non-printable character',
      () => ({ 'X-Auth-Token': 'abc\tdef' }),
    ],
  ])('%s is 401', async (_name, auth) => {
    const headers = auth();
    for (const send of [
      () => request(t.http).get('/v1/images'),
      () =>
        request(t.http)
          .post('/v1/images')
          .set(metaHeaders({ name: 'x' })),
    ]) {
      expectError(await send().set(headers), 401, 'could not verify');
    }
  });

  it('Keystone down is 503 (never fail-open) and recovers once Keystone is back', async () => {
    const tok = ks.issueToken({ projectId: 'proj-4' });
    ks.setDown(true);
    try {
      expectError(
        await request(t.http).get('/v1/images').set(token(tok)),
        503,
        'identity service',
      );
      const post = await request(t.http)
        .post('/v1/images')
        .set(token(tok))
        .set(metaHeaders({ name: 'down' }));
      expect(post.status).toBe(503);
      // No token is still a plain 401: Keystone is not needed to refuse it.
      expect((await request(t.http).get('/v1/images')).status).toBe(401);
    } finally {
      ks.setDown(false);
    }
    // The outage was not cached as a verdict on the token.
    const image = await createImage(t, { name: 'back' }, token(tok));
    expect(image.owner).toBe('proj-4');
  });

  it('Keystone unreachable is 503', async () => {
    const dead = await startFakeKeystone();
    const url = dead.url;
    await dead.close();
    const app = await createTestApp(keystoneEnv(url));
    try {
      const res = await request(app.http)
        .get('/v1/images')
        .set(token('gAAAAsome-token'));
      expect(res.status).toBe(503);
    } finally {
      await app.close();
    }
  });
});

describe('OWNER_IS_TENANT=false', () => {
  let ks: FakeKeystone;
  let t: TestApp;
  beforeAll(async () => {
    ks = await startFakeKeystone();
    t = await createTestApp(keystoneEnv(ks.url, { OWNER_IS_TENANT: 'false' }));
  });
  afterAll(async () => {
    await t?.close();
    await ks?.close();
  });

  it('the user owns what it creates; another user of the same project is another owner', async () => {
    const alice = ks.issueToken({ projectId: 'shared-proj', userId: 'alice' });
    const bob = ks.issueToken({ projectId: 'shared-proj', userId: 'bob' });
    const image = await createImage(t, { name: 'alice-image' }, token(alice));
    expect(image.owner).toBe('alice');
    expect(
      (await request(t.http).head(`/v1/images/${image.id}`).set(token(alice)))
        .status,
    ).toBe(200);
    expect(
      (await request(t.http).head(`/v1/images/${image.id}`).set(token(bob)))
        .status,
    ).toBe(404);
    expect(await listedIds(t, token(bob))).not.toContain(image.id);
  });

  it('members are users too: sharing with a user id makes the image visible to that user', async () => {
    const alice = ks.issueToken({ projectId: 'p', userId: 'alice' });
    const bob = ks.issueToken({ projectId: 'q', userId: 'bob' });
    const image = await createImage(t, { name: 'to-bob' }, token(alice));
    await request(t.http)
      .put(`/v1/images/${image.id}/members/bob`)
      .set(token(alice))
      .expect(204);
    expect(
      (await request(t.http).head(`/v1/images/${image.id}`).set(token(bob)))
        .status,
    ).toBe(200);
  });

  it('in noauth too, X-User-Id becomes the owner', async () => {
    const app = await createTestApp({ OWNER_IS_TENANT: 'false' });
    try {
      const image = await createImage(
        app,
        { name: 'u' },
        as('tenant-a', 'member', 'user-7'),
      );
      expect(image.owner).toBe('user-7');
      const sameTenant = as('tenant-a', 'member', 'user-8');
      expect(
        (await request(app.http).head(`/v1/images/${image.id}`).set(sameTenant))
          .status,
      ).toBe(404);
    } finally {
      await app.close();
    }
  });
});
