import { randomUUID } from 'node:crypto';
import request, { type Response } from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryParser } from '../support/image-assertions.js';
import { createImage, metaHeaders } from '../support/image-builder.js';
import { ADMIN, as, createTestApp, type TestApp } from '../support/test-app.js';

type Auth = Record<string, string>;
type Role = 'A' | 'B' | 'admin';
type Kind = 'privateA' | 'publicA' | 'sharedA' | 'privateB';

const CALLERS: Record<Role, Auth> = {
  A: as('tenant-a'),
  B: as('tenant-b'),
  admin: ADMIN,
};
const ROLES = Object.keys(CALLERS) as Role[];
const KINDS: Kind[] = ['privateA', 'publicA', 'sharedA', 'privateB'];

/** Who may see each kind of image (sharedA is private to A, shared with B). */
const VISIBLE: Record<Kind, Role[]> = {
  privateA: ['A', 'admin'],
  publicA: ['A', 'B', 'admin'],
  sharedA: ['A', 'B', 'admin'],
  privateB: ['B', 'admin'],
};

/** Status of a change by `role`: owner/admin succeed, visible public 403, anything else 404. */
function writeStatus(kind: Kind, role: Role, ok: number): number {
  const owner = kind === 'privateB' ? 'B' : 'A';
  if (role === owner || role === 'admin') return ok;
  return kind === 'publicA' ? 403 : 404;
}

/** Sharing (members PUT/DELETE) is never allowed to a non-owner without can_share: 404 in v1. */
function shareStatus(kind: Kind, role: Role): number {
  const owner = kind === 'privateB' ? 'B' : 'A';
  return role === owner || role === 'admin' ? 204 : 404;
}

const DATA = Buffer.from('matrix image bytes');

describe('authorization matrix (noauth identities: tenants A, B and an admin)', () => {
  let t: TestApp;
  const images = {} as Record<Kind, string>;

  async function makeImage(
    kind: Kind,
    data: Buffer | null = DATA,
  ): Promise<string> {
    const owner = kind === 'privateB' ? CALLERS.B : CALLERS.A;
    const image = await createImage(
      t,
      {
        name: `${kind}-image`,
        is_public: kind === 'publicA',
        data: data ?? undefined,
      },
      owner,
    );
    if (kind === 'sharedA') {
      const res = await request(t.http)
        .put(`/v1/images/${image.id}/members/tenant-b`)
        .set(CALLERS.A);
      expect(res.status).toBe(204);
    }
    return image.id;
  }

  const head = (id: string, auth: Auth) =>
    request(t.http).head(`/v1/images/${id}`).set(auth);
  const download = (id: string, auth: Auth) =>
    request(t.http)
      .get(`/v1/images/${id}`)
      .set(auth)
      .buffer(true)
      .parse(binaryParser);
  const listIds = async (path: string, auth: Auth): Promise<string[]> => {
    const res = await request(t.http).get(path).set(auth);
    expect(res.status).toBe(200);
    return res.body.images.map((i: { id: string }) => i.id);
  };
  /** The image as the admin sees it (deleted ones included). */
  const adminView = async (id: string) => {
    const res = await head(id, ADMIN);
    expect(res.status).toBe(200);
    return res.headers;
  };

  beforeAll(async () => {
    t = await createTestApp();
    for (const kind of KINDS) images[kind] = await makeImage(kind);
  });
  afterAll(async () => t?.close());

  describe('reads: HEAD, GET and GET members', () => {
    const cases = KINDS.flatMap((kind) =>
      ROLES.map((role) => ({
        kind,
        role,
        visible: VISIBLE[kind].includes(role),
      })),
    );

    it.each(cases)(
      '$kind as $role (visible: $visible)',
      async ({ kind, role, visible }) => {
        const id = images[kind];
        const auth = CALLERS[role];
        const meta = await head(id, auth);
        const data = await download(id, auth);
        const members = await request(t.http)
          .get(`/v1/images/${id}/members`)
          .set(auth);
        if (visible) {
          expect(meta.status).toBe(200);
          expect(meta.headers['x-image-meta-id']).toBe(id);
          expect(data.status).toBe(200);
          expect((data.body as Buffer).equals(DATA)).toBe(true);
          expect(members.status).toBe(200);
        } else {
          expect([meta.status, data.status, members.status]).toEqual([
            404, 404, 404,
          ]);
          expect(meta.headers['x-image-meta-id']).toBeUndefined();
          expect(data.text ?? data.body.toString()).not.toContain(
            `${kind}-image`,
          );
          expect(members.text).not.toContain('tenant-b');
        }
      },
    );

    it('a member of a shared image sees only its own membership; the owner and admin see all', async () => {
      const id = images.sharedA;
      await request(t.http)
        .put(`/v1/images/${id}/members/tenant-z`)
        .set(CALLERS.A)
        .expect(204);
      const membersAs = async (auth: Auth) =>
        (await request(t.http).get(`/v1/images/${id}/members`).set(auth)).body
          .members;
      const all = [
        { member_id: 'tenant-b', can_share: false },
        { member_id: 'tenant-z', can_share: false },
      ];
      expect(await membersAs(CALLERS.A)).toEqual(all);
      expect(await membersAs(ADMIN)).toEqual(all);
      expect(await membersAs(CALLERS.B)).toEqual([
        { member_id: 'tenant-b', can_share: false },
      ]);
      await request(t.http)
        .delete(`/v1/images/${id}/members/tenant-z`)
        .set(CALLERS.A)
        .expect(204);
    });
  });

  describe('lists never include images the caller cannot see', () => {
    const expected = (role: Role) =>
      KINDS.filter((k) => VISIBLE[k].includes(role));

    it.each(['/v1/images', '/v1/images/detail'])(
      '%s as tenants A and B',
      async (path) => {
        for (const role of ['A', 'B'] as const) {
          const ids = await listIds(path, CALLERS[role]);
          const known = ids.filter((id) => Object.values(images).includes(id));
          expect(known.sort()).toEqual(
            expected(role)
              .map((k) => images[k])
              .sort(),
          );
        }
      },
    );

    it('the admin sees every image with is_public=None', async () => {
      const ids = await listIds('/v1/images/detail?is_public=None', ADMIN);
      expect(ids).toEqual(expect.arrayContaining(Object.values(images)));
    });

    it('tenants filtering is_public=false still see only their own and shared images', async () => {
      const ids = await listIds('/v1/images/detail?is_public=false', CALLERS.B);
      expect(ids).not.toContain(images.privateA);
      expect(ids).toEqual(
        expect.arrayContaining([images.sharedA, images.privateB]),
      );
    });

    it("another tenant's private image as a marker is the same 400 as an unknown marker", async () => {
      const hidden = await request(t.http)
        .get(`/v1/images?marker=${images.privateA}`)
        .set(CALLERS.B);
      const unknown = await request(t.http)
        .get(`/v1/images?marker=${randomUUID()}`)
        .set(CALLERS.B);
      expect(hidden.status).toBe(400);
      expect(unknown.status).toBe(400);
      expect(hidden.text).toBe(unknown.text);
    });

    it('shared-images shows memberships only to the owner, the member and admins', async () => {
      const shared = async (tenant: string, auth: Auth) => {
        const res = await request(t.http)
          .get(`/v1/shared-images/${tenant}`)
          .set(auth);
        expect(res.status).toBe(200);
        return res.body.shared_images.map(
          (s: { image_id: string }) => s.image_id,
        );
      };
      expect(await shared('tenant-b', CALLERS.A)).toContain(images.sharedA);
      expect(await shared('tenant-b', CALLERS.B)).toContain(images.sharedA);
      expect(await shared('tenant-b', ADMIN)).toContain(images.sharedA);
      expect(await shared('tenant-b', as('tenant-c'))).toEqual([]);
    });
  });

  describe('writes on fresh images', () => {
    const cases = KINDS.flatMap((kind) =>
      ROLES.map((role) => ({ kind, role })),
    );

    it.each(cases)('PUT metadata: $kind as $role', async ({ kind, role }) => {
      const id = await makeImage(kind);
      const expected = writeStatus(kind, role, 200);
      const res = await request(t.http)
        .put(`/v1/images/${id}`)
        .set(CALLERS[role])
        .set('x-image-meta-name', 'renamed')
        .set('x-image-meta-property-injected', 'yes');
      expect(res.status).toBe(expected);
      const after = await adminView(id);
      if (expected === 200) {
        expect(after['x-image-meta-name']).toBe('renamed');
      } else {
        expect(after['x-image-meta-name']).toBe(`${kind}-image`);
        expect(after['x-image-meta-property-injected']).toBeUndefined();
      }
    });

    it.each(cases)('PUT upload: $kind as $role', async ({ kind, role }) => {
      const id = await makeImage(kind, null);
      const expected = writeStatus(kind, role, 200);
      const res = await request(t.http)
        .put(`/v1/images/${id}`)
        .set(CALLERS[role])
        .set('Content-Type', 'application/octet-stream')
        .send(DATA);
      expect(res.status).toBe(expected);
      const after = await adminView(id);
      expect(after['x-image-meta-status']).toBe(
        expected === 200 ? 'active' : 'queued',
      );
    });

    it.each(cases)('DELETE: $kind as $role', async ({ kind, role }) => {
      const id = await makeImage(kind);
      const expected = writeStatus(kind, role, 200);
      const res = await request(t.http)
        .delete(`/v1/images/${id}`)
        .set(CALLERS[role]);
      expect(res.status).toBe(expected);
      const after = await adminView(id);
      expect(after['x-image-meta-status']).toBe(
        expected === 200 ? 'deleted' : 'active',
      );
    });

    it.each(cases)(
      'members PUT, replace and DELETE: $kind as $role',
      async ({ kind, role }) => {
        const id = await makeImage(kind);
        const auth = CALLERS[role];
        const expected = shareStatus(kind, role);
        const put = await request(t.http)
          .put(`/v1/images/${id}/members/tenant-x`)
          .set(auth);
        const replace = await request(t.http)
          .put(`/v1/images/${id}/members`)
          .set(auth)
          .set('Content-Type', 'application/json')
          .send(JSON.stringify({ memberships: [{ member_id: 'tenant-y' }] }));
        expect([put.status, replace.status]).toEqual([expected, expected]);
        // Nobody but the owner and admins can remove a share made by the owner.
        await request(t.http)
          .put(`/v1/images/${id}/members/tenant-w`)
          .set(CALLERS[kind === 'privateB' ? 'B' : 'A'])
          .expect(204);
        const del = await request(t.http)
          .delete(`/v1/images/${id}/members/tenant-w`)
          .set(auth);
        expect(del.status).toBe(expected);
        const members = await request(t.http)
          .get(`/v1/images/${id}/members`)
          .set(ADMIN);
        const ids = members.body.members.map(
          (m: { member_id: string }) => m.member_id,
        );
        if (expected === 204) {
          expect(ids).toEqual(['tenant-y']);
        } else {
          expect(ids).not.toContain('tenant-x');
          expect(ids).not.toContain('tenant-y');
          expect(ids).toContain('tenant-w');
        }
      },
    );
  });

  describe('create (POST) by every role', () => {
    it.each(ROLES)(
      '%s creates images it owns; only an admin may name another owner',
      async (role) => {
        const auth = CALLERS[role];
        const res = await request(t.http)
          .post('/v1/images')
          .set(auth)
          .set(
            metaHeaders({
              name: `created-by-${role}`,
              headers: { 'x-image-meta-owner': 'tenant-q' },
            }),
          );
        expect(res.status).toBe(201);
        expect(res.body.image.owner).toBe(
          role === 'admin' ? 'tenant-q' : auth['X-Tenant-Id'],
        );
      },
    );

    it('a non-admin cannot give its image away with x-image-meta-owner on update', async () => {
      const id = await makeImage('privateA');
      const res = await request(t.http)
        .put(`/v1/images/${id}`)
        .set(CALLERS.A)
        .set('x-image-meta-owner', 'tenant-b');
      expect(res.status).toBe(200);
      expect((await adminView(id))['x-image-meta-owner']).toBe('tenant-a');
      expect((await head(id, CALLERS.B)).status).toBe(404);
    });
  });

  describe("another tenant's private image is indistinguishable from a missing one", () => {
    const VOLATILE = new Set([
      'date',
      'x-openstack-request-id',
      'x-request-id',
      'connection',
      'keep-alive',
    ]);
    const shape = (res: Response, id: string) => ({
      status: res.status,
      headers: Object.fromEntries(
        Object.entries(res.headers).filter(([k]) => !VOLATILE.has(k)),
      ),
      body: (res.text ?? '').replaceAll(id, '<id>'),
    });
    const routes: [string, (id: string, auth: Auth) => request.Test][] = [
      [
        'HEAD',
        (id, auth) => request(t.http).head(`/v1/images/${id}`).set(auth),
      ],
      ['GET', (id, auth) => request(t.http).get(`/v1/images/${id}`).set(auth)],
      [
        'PUT',
        (id, auth) =>
          request(t.http)
            .put(`/v1/images/${id}`)
            .set(auth)
            .set('x-image-meta-name', 'x'),
      ],
      [
        'DELETE',
        (id, auth) => request(t.http).delete(`/v1/images/${id}`).set(auth),
      ],
      [
        'GET members',
        (id, auth) => request(t.http).get(`/v1/images/${id}/members`).set(auth),
      ],
      [
        'PUT member',
        (id, auth) =>
          request(t.http).put(`/v1/images/${id}/members/tenant-b`).set(auth),
      ],
      [
        'DELETE member',
        (id, auth) =>
          request(t.http).delete(`/v1/images/${id}/members/tenant-a`).set(auth),
      ],
    ];

    it.each(routes)('%s', async (_name, send) => {
      const hiddenId = images.privateA;
      const missingId = randomUUID();
      const hidden = shape(await send(hiddenId, CALLERS.B), hiddenId);
      const missing = shape(await send(missingId, CALLERS.B), missingId);
      expect(hidden.status).toBe(404);
      expect(hidden).toEqual(missing);
    });
  });
});

describe('anonymous callers (trusted-headers without X-Identity-Status)', () => {
  let t: TestApp;
  let id: string;
  const confirmed = { ...as('tenant-a'), 'X-Identity-Status': 'Confirmed' };
  const anonymous: Auth[] = [
    {},
    as('tenant-a'),
    { ...as('tenant-a', 'admin'), 'X-Identity-Status': 'Invalid' },
  ];

  beforeAll(async () => {
    t = await createTestApp({ AUTH_STRATEGY: 'trusted-headers' });
    id = (
      await createImage(
        t,
        { name: 'secret', is_public: true, data: DATA },
        confirmed,
      )
    ).id;
  });
  afterAll(async () => t?.close());

  const routes: [string, (id: string) => request.Test][] = [
    ['GET list', () => request(t.http).get('/v1/images')],
    ['GET detail', () => request(t.http).get('/v1/images/detail')],
    ['HEAD', (i) => request(t.http).head(`/v1/images/${i}`)],
    ['GET', (i) => request(t.http).get(`/v1/images/${i}`)],
    [
      'POST',
      () =>
        request(t.http)
          .post('/v1/images')
          .set(metaHeaders({ name: 'anon' })),
    ],
    [
      'PUT metadata',
      (i) =>
        request(t.http).put(`/v1/images/${i}`).set('x-image-meta-name', 'anon'),
    ],
    [
      'PUT upload',
      (i) =>
        request(t.http)
          .put(`/v1/images/${i}`)
          .set('Content-Type', 'application/octet-stream')
          .send(DATA),
    ],
    ['DELETE', (i) => request(t.http).delete(`/v1/images/${i}`)],
    ['GET members', (i) => request(t.http).get(`/v1/images/${i}/members`)],
    [
      'PUT members',
      (i) =>
        request(t.http)
          .put(`/v1/images/${i}/members`)
          .set('Content-Type', 'application/json')
          .send('{"memberships": []}'),
    ],
    [
      'PUT member',
      (i) => request(t.http).put(`/v1/images/${i}/members/tenant-b`),
    ],
    [
      'DELETE member',
      (i) => request(t.http).delete(`/v1/images/${i}/members/tenant-b`),
    ],
    [
      'GET shared-images',
      () => request(t.http).get('/v1/shared-images/tenant-a'),
    ],
  ];

  it.each(routes)(
    '%s is 401 for an existing and a missing image alike',
    async (_name, send) => {
      for (const auth of anonymous) {
        const existing = await send(id).set(auth);
        const missing = await send(randomUUID()).set(auth);
        expect(existing.status).toBe(401);
        expect(missing.status).toBe(401);
        expect(existing.headers['x-image-meta-name']).toBeUndefined();
        expect(existing.text ?? '').not.toContain('secret');
      }
    },
  );

  it('nothing was changed by the anonymous requests', async () => {
    const res = await request(t.http).head(`/v1/images/${id}`).set(confirmed);
    expect(res.status).toBe(200);
    expect(res.headers['x-image-meta-name']).toBe('secret');
    expect(res.headers['x-image-meta-status']).toBe('active');
    const list = await request(t.http).get('/v1/images').set(confirmed);
    expect(list.body.images.map((i: { name: string }) => i.name)).toEqual([
      'secret',
    ]);
  });
});
