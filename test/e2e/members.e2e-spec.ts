import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createImage } from '../support/image-builder.js';
import { ADMIN, as, createTestApp, type TestApp } from '../support/test-app.js';

const OWNER = as('tenant-a');
const MEMBER = as('tenant-b');
const OTHER = as('tenant-c');
/** noauth caller with roles but no tenant: authenticated as nobody. */
const NO_TENANT = { 'X-Roles': 'member', 'X-User-Id': 'someone' };

type Auth = Record<string, string>;

function membersOf(t: TestApp, id: string, auth: Auth) {
  return request(t.http).get(`/v1/images/${id}/members`).set(auth);
}

function putMember(
  t: TestApp,
  id: string,
  member: string,
  auth: Auth,
  body?: unknown,
) {
  const req = request(t.http)
    .put(`/v1/images/${id}/members/${member}`)
    .set(auth);
  return body === undefined
    ? req
    : req.set('Content-Type', 'application/json').send(JSON.stringify(body));
}

function replaceMembers(t: TestApp, id: string, auth: Auth, body: unknown) {
  return request(t.http)
    .put(`/v1/images/${id}/members`)
    .set(auth)
    .set('Content-Type', 'application/json')
    .send(typeof body === 'string' ? body : JSON.stringify(body));
}

function deleteMember(t: TestApp, id: string, member: string, auth: Auth) {
  return request(t.http).delete(`/v1/images/${id}/members/${member}`).set(auth);
}

function sharedWith(t: TestApp, tenant: string, auth: Auth) {
  return request(t.http).get(`/v1/shared-images/${tenant}`).set(auth);
}

async function memberIds(
  t: TestApp,
  id: string,
  auth: Auth = OWNER,
): Promise<unknown> {
  const res = await membersOf(t, id, auth);
  expect(res.status).toBe(200);
  return res.body.members;
}

async function listedIds(
  t: TestApp,
  path: string,
  auth: Auth,
): Promise<string[]> {
  const res = await request(t.http).get(path).set(auth);
  expect(res.status).toBe(200);
  return res.body.images.map((i: { id: string }) => i.id);
}

function download(t: TestApp, id: string, auth: Auth) {
  return request(t.http)
    .get(`/v1/images/${id}`)
    .set(auth)
    .buffer(true)
    .parse((res, cb) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => cb(null, Buffer.concat(chunks)));
    });
}

describe('image members (v1)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  let image: Record<string, any>;
  const data = Buffer.from('shared bytes');
  beforeEach(async () => {
    image = await createImage(t, { name: 'private', data }, OWNER);
  });

  describe('GET /v1/images/{id}/members', () => {
    it('starts empty for the owner', async () => {
      expect(await memberIds(t, image.id)).toEqual([]);
    });

    it('the owner and admins see every member in the order they were added', async () => {
      for (const m of ['tenant-b', 'tenant-x', 'tenant-y']) {
        expect((await putMember(t, image.id, m, OWNER)).status).toBe(204);
      }
      const all = [
        { member_id: 'tenant-b', can_share: false },
        { member_id: 'tenant-x', can_share: false },
        { member_id: 'tenant-y', can_share: false },
      ];
      expect(await memberIds(t, image.id, OWNER)).toEqual(all);
      expect(await memberIds(t, image.id, ADMIN)).toEqual(all);
    });

    it('a member sees only its own membership', async () => {
      await putMember(t, image.id, 'tenant-b', OWNER);
      await putMember(t, image.id, 'tenant-x', OWNER);
      expect(await memberIds(t, image.id, MEMBER)).toEqual([
        { member_id: 'tenant-b', can_share: false },
      ]);
    });

    it('another tenant gets 404 for a private image', async () => {
      await putMember(t, image.id, 'tenant-b', OWNER);
      const res = await membersOf(t, image.id, OTHER);
      expect(res.status).toBe(404);
      expect(res.text).not.toContain('tenant-b');
    });

    it('another tenant sees no members of a public image', async () => {
      const pub = await createImage(t, { is_public: true }, OWNER);
      await putMember(t, pub.id, 'tenant-b', OWNER);
      expect(await memberIds(t, pub.id, OTHER)).toEqual([]);
    });

    it('404 for unknown and malformed ids', async () => {
      expect(
        (await membersOf(t, '6bbe7cc2-eae7-4c0f-b50d-a7160b0c6a86', ADMIN))
          .status,
      ).toBe(404);
      expect((await membersOf(t, 'not-an-id', ADMIN)).status).toBe(404);
    });

    it('is reachable through the /v1.1 alias', async () => {
      const res = await request(t.http)
        .get(`/v1.1/images/${image.id}/members`)
        .set(OWNER);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ members: [] });
    });
  });

  describe('PUT /v1/images/{id}/members/{member}', () => {
    it('shares with a tenant; can_share defaults to false and is kept when not given', async () => {
      expect((await putMember(t, image.id, 'tenant-b', OWNER)).status).toBe(
        204,
      );
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'tenant-b', can_share: false },
      ]);

      const set = await putMember(t, image.id, 'tenant-b', OWNER, {
        member: { can_share: true },
      });
      expect(set.status).toBe(204);
      expect(set.text).toBe('');
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'tenant-b', can_share: true },
      ]);

      // No body, an empty object and a member without can_share all keep the flag.
      await putMember(t, image.id, 'tenant-b', OWNER);
      await putMember(t, image.id, 'tenant-b', OWNER, {});
      await putMember(t, image.id, 'tenant-b', OWNER, { member: {} });
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'tenant-b', can_share: true },
      ]);

      await putMember(t, image.id, 'tenant-b', OWNER, {
        member: { can_share: false },
      });
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'tenant-b', can_share: false },
      ]);
    });

    it('a new member can be given can_share at once', async () => {
      await putMember(t, image.id, 'tenant-b', OWNER, {
        member: { can_share: true },
      });
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'tenant-b', can_share: true },
      ]);
    });

    it('an admin may share any image', async () => {
      expect((await putMember(t, image.id, 'tenant-z', ADMIN)).status).toBe(
        204,
      );
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'tenant-z', can_share: false },
      ]);
    });

    it('a member without can_share may not share (404, as Glance v1)', async () => {
      await putMember(t, image.id, 'tenant-b', OWNER);
      const res = await putMember(t, image.id, 'tenant-c', MEMBER);
      expect(res.status).toBe(404);
      expect(res.text).toContain('Forbidden');
      // Nor raise its own flag.
      const own = await putMember(t, image.id, 'tenant-b', MEMBER, {
        member: { can_share: true },
      });
      expect(own.status).toBe(404);
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'tenant-b', can_share: false },
      ]);
    });

    it('another tenant gets 404 and changes nothing', async () => {
      const res = await putMember(t, image.id, 'tenant-c', OTHER);
      expect(res.status).toBe(404);
      expect(await memberIds(t, image.id)).toEqual([]);
    });

    it('another tenant may not share a public image it does not own', async () => {
      const pub = await createImage(t, { is_public: true }, OWNER);
      expect((await putMember(t, pub.id, 'tenant-c', OTHER)).status).toBe(404);
      expect(await memberIds(t, pub.id)).toEqual([]);
    });

    it('a caller without a tenant gets 401', async () => {
      const res = await putMember(t, image.id, 'tenant-b', NO_TENANT);
      expect(res.status).toBe(401);
      expect(res.text).toContain('No authenticated user');
    });

    it('404 for an unknown image', async () => {
      const res = await putMember(
        t,
        '6bbe7cc2-eae7-4c0f-b50d-a7160b0c6a86',
        'tenant-b',
        ADMIN,
      );
      expect(res.status).toBe(404);
    });

    it('400 for malformed JSON and wrong shapes', async () => {
      const bad = await request(t.http)
        .put(`/v1/images/${image.id}/members/tenant-b`)
        .set(OWNER)
        .set('Content-Type', 'application/json')
        .send('{"member": ');
      expect(bad.status).toBe(400);
      expect(bad.text).toContain('Malformed JSON in request body.');

      for (const body of [
        [{ can_share: true }],
        'yes',
        { member: [{ can_share: true }] },
        { member: 'x' },
      ]) {
        const res = await putMember(t, image.id, 'tenant-b', OWNER, body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.text).toContain('Invalid membership association');
      }
      const long = await putMember(t, image.id, 'x'.repeat(256), OWNER);
      expect(long.status).toBe(400);
      expect(await memberIds(t, image.id)).toEqual([]);
    });

    it('reads a body sent without Content-Type, as Glance does', async () => {
      const res = await request(t.http)
        .put(`/v1/images/${image.id}/members/tenant-b`)
        .set(OWNER)
        .send(Buffer.from(JSON.stringify({ member: { can_share: true } })));
      expect(res.status).toBe(204);
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'tenant-b', can_share: true },
      ]);
    });

    it('413 for a body over 64 KiB', async () => {
      const res = await putMember(t, image.id, 'tenant-b', OWNER, {
        member: { pad: 'x'.repeat(70_000) },
      });
      expect(res.status).toBe(413);
      expect(await memberIds(t, image.id)).toEqual([]);
    });
  });

  describe('a member with can_share', () => {
    beforeEach(async () => {
      await putMember(t, image.id, 'tenant-b', OWNER, {
        member: { can_share: true },
      });
      await putMember(t, image.id, 'tenant-x', OWNER);
    });

    it('may share the image onwards, and the new member can use it', async () => {
      expect((await putMember(t, image.id, 'tenant-c', MEMBER)).status).toBe(
        204,
      );
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'tenant-b', can_share: true },
        { member_id: 'tenant-x', can_share: false },
        { member_id: 'tenant-c', can_share: false },
      ]);
      expect(
        (await request(t.http).head(`/v1/images/${image.id}`).set(OTHER))
          .status,
      ).toBe(200);
    });

    it('may grant can_share to another member', async () => {
      await putMember(t, image.id, 'tenant-x', MEMBER, {
        member: { can_share: true },
      });
      expect(await memberIds(t, image.id)).toContainEqual({
        member_id: 'tenant-x',
        can_share: true,
      });
    });

    it('may remove itself but not members it cannot see', async () => {
      const other = await deleteMember(t, image.id, 'tenant-x', MEMBER);
      expect(other.status).toBe(404);
      expect(other.text).toContain('Membership could not be found.');
      expect((await deleteMember(t, image.id, 'tenant-b', MEMBER)).status).toBe(
        204,
      );
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'tenant-x', can_share: false },
      ]);
    });

    it('replace-all only replaces what it can see: its own membership', async () => {
      const res = await replaceMembers(t, image.id, MEMBER, {
        memberships: [{ member_id: 'tenant-d' }],
      });
      expect(res.status).toBe(204);
      // Its own membership was not listed, so it is gone; tenant-x stays.
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'tenant-x', can_share: false },
        { member_id: 'tenant-d', can_share: false },
      ]);
    });
  });

  describe('PUT /v1/images/{id}/members (replace all)', () => {
    it('makes the list exactly the given memberships', async () => {
      await putMember(t, image.id, 'tenant-b', OWNER, {
        member: { can_share: true },
      });
      await putMember(t, image.id, 'tenant-x', OWNER, {
        member: { can_share: true },
      });
      await putMember(t, image.id, 'tenant-gone', OWNER);

      const res = await replaceMembers(t, image.id, OWNER, {
        memberships: [
          { member_id: 'tenant-b' },
          { member_id: 'tenant-x', can_share: false },
          { member_id: 'tenant-new', can_share: true },
          { member_id: 'tenant-plain' },
        ],
      });
      expect(res.status).toBe(204);
      expect(res.text).toBe('');
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'tenant-b', can_share: true },
        { member_id: 'tenant-x', can_share: false },
        { member_id: 'tenant-new', can_share: true },
        { member_id: 'tenant-plain', can_share: false },
      ]);
    });

    it('an empty list removes every member', async () => {
      await putMember(t, image.id, 'tenant-b', OWNER);
      expect(
        (await replaceMembers(t, image.id, OWNER, { memberships: [] })).status,
      ).toBe(204);
      expect(await memberIds(t, image.id)).toEqual([]);
      expect(
        (await request(t.http).head(`/v1/images/${image.id}`).set(MEMBER))
          .status,
      ).toBe(404);
    });

    it('a tenant listed twice keeps its last entry', async () => {
      await replaceMembers(t, image.id, OWNER, {
        memberships: [
          { member_id: 'tenant-b', can_share: true },
          { member_id: 'tenant-b', can_share: false },
        ],
      });
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'tenant-b', can_share: false },
      ]);
    });

    it('can_share follows Python truthiness, as Glance applies bool()', async () => {
      await replaceMembers(t, image.id, OWNER, {
        memberships: [
          { member_id: 'm1', can_share: 'false' },
          { member_id: 'm2', can_share: 0 },
          { member_id: 'm3', can_share: null },
          { member_id: 'm4', can_share: 1 },
        ],
      });
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'm1', can_share: true },
        { member_id: 'm2', can_share: false },
        { member_id: 'm3', can_share: false },
        { member_id: 'm4', can_share: true },
      ]);
    });

    it('admins may replace; others get 404, members without can_share too', async () => {
      await putMember(t, image.id, 'tenant-b', OWNER);
      const body = { memberships: [{ member_id: 'tenant-c' }] };
      expect((await replaceMembers(t, image.id, OTHER, body)).status).toBe(404);
      expect((await replaceMembers(t, image.id, MEMBER, body)).status).toBe(
        404,
      );
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'tenant-b', can_share: false },
      ]);
      expect((await replaceMembers(t, image.id, ADMIN, body)).status).toBe(204);
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'tenant-c', can_share: false },
      ]);
    });

    it('400 for malformed JSON and wrong shapes, changing nothing', async () => {
      await putMember(t, image.id, 'tenant-b', OWNER);
      const malformed = await replaceMembers(
        t,
        image.id,
        OWNER,
        '{"memberships": [',
      );
      expect(malformed.status).toBe(400);
      expect(malformed.text).toContain('Malformed JSON in request body.');

      for (const body of [
        {},
        { image_memberships: { member_id: 'tenant-c' } },
        { memberships: { member_id: 'tenant-c' } },
        { memberships: null },
        { memberships: [{ can_share: true }] },
        { memberships: [{ member_id: 42 }] },
        { memberships: [{ member_id: '' }] },
        { memberships: ['tenant-c'] },
        [{ member_id: 'tenant-c' }],
      ]) {
        const res = await replaceMembers(t, image.id, OWNER, body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.text).toContain('Invalid membership association');
      }
      const empty = await request(t.http)
        .put(`/v1/images/${image.id}/members`)
        .set(OWNER);
      expect(empty.status).toBe(400);
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'tenant-b', can_share: false },
      ]);
    });

    it('a caller without a tenant gets 401 before the body is looked at', async () => {
      const res = await replaceMembers(t, image.id, NO_TENANT, {
        image_memberships: {},
      });
      expect(res.status).toBe(401);
    });

    it('404 for an unknown image even with a bad body', async () => {
      const res = await replaceMembers(
        t,
        '6bbe7cc2-eae7-4c0f-b50d-a7160b0c6a86',
        ADMIN,
        {},
      );
      expect(res.status).toBe(404);
    });
  });

  describe('DELETE /v1/images/{id}/members/{member}', () => {
    it('the owner removes a member; removing it again is 404', async () => {
      await putMember(t, image.id, 'tenant-b', OWNER);
      const res = await deleteMember(t, image.id, 'tenant-b', OWNER);
      expect(res.status).toBe(204);
      expect(res.text).toBe('');
      expect(await memberIds(t, image.id)).toEqual([]);
      const again = await deleteMember(t, image.id, 'tenant-b', OWNER);
      expect(again.status).toBe(404);
      expect(again.text).toContain('Membership could not be found.');
    });

    it('an admin removes a member', async () => {
      await putMember(t, image.id, 'tenant-b', OWNER);
      expect((await deleteMember(t, image.id, 'tenant-b', ADMIN)).status).toBe(
        204,
      );
      expect(await memberIds(t, image.id)).toEqual([]);
    });

    it('a member without can_share and other tenants get 404', async () => {
      await putMember(t, image.id, 'tenant-b', OWNER);
      expect((await deleteMember(t, image.id, 'tenant-b', MEMBER)).status).toBe(
        404,
      );
      expect((await deleteMember(t, image.id, 'tenant-b', OTHER)).status).toBe(
        404,
      );
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'tenant-b', can_share: false },
      ]);
    });

    it('a caller without a tenant gets 401', async () => {
      expect(
        (await deleteMember(t, image.id, 'tenant-b', NO_TENANT)).status,
      ).toBe(401);
    });

    it('a member can be added again after removal', async () => {
      await putMember(t, image.id, 'tenant-b', OWNER, {
        member: { can_share: true },
      });
      await deleteMember(t, image.id, 'tenant-b', OWNER);
      await putMember(t, image.id, 'tenant-b', OWNER);
      expect(await memberIds(t, image.id)).toEqual([
        { member_id: 'tenant-b', can_share: false },
      ]);
    });
  });

  describe('GET /v1/images/{id}/members/{member}', () => {
    it('is not supported by Glance v1: 405 for everyone', async () => {
      await putMember(t, image.id, 'tenant-b', OWNER);
      for (const auth of [OWNER, MEMBER, OTHER, ADMIN]) {
        const res = await request(t.http)
          .get(`/v1/images/${image.id}/members/tenant-b`)
          .set(auth);
        expect(res.status).toBe(405);
        expect(res.headers.allow).toBe('PUT, DELETE');
      }
    });
  });

  describe('GET /v1/shared-images/{tenant}', () => {
    // Tenants of their own: the app (and its database) is shared by every test.
    const owner1 = as('share-owner-1');
    const owner2 = as('share-owner-2');
    const member = as('share-member');

    it('lists the images shared with a tenant, as each caller may see them', async () => {
      const first = await createImage(t, { name: 'first' }, owner1);
      const second = await createImage(t, { name: 'second' }, owner2);
      await putMember(t, first.id, 'share-member', owner1, {
        member: { can_share: true },
      });
      await putMember(t, second.id, 'share-member', owner2);
      const both = [
        { image_id: first.id, can_share: true },
        { image_id: second.id, can_share: false },
      ];

      const self = await sharedWith(t, 'share-member', member);
      expect(self.status).toBe(200);
      expect(self.body.shared_images).toEqual(both);
      expect(
        (await sharedWith(t, 'share-member', ADMIN)).body.shared_images,
      ).toEqual(both);
      // An owner sees the shares of its own images only.
      expect(
        (await sharedWith(t, 'share-member', owner1)).body.shared_images,
      ).toEqual([{ image_id: first.id, can_share: true }]);
      expect((await sharedWith(t, 'share-member', OTHER)).body).toEqual({
        shared_images: [],
      });
      expect((await sharedWith(t, 'nobody', ADMIN)).body).toEqual({
        shared_images: [],
      });
    });

    it('drops removed memberships and deleted images', async () => {
      const first = await createImage(t, { name: 'first' }, owner1);
      const second = await createImage(t, { name: 'second' }, owner1);
      await putMember(t, first.id, 'share-gone', owner1);
      await putMember(t, second.id, 'share-gone', owner1);
      expect(
        (await sharedWith(t, 'share-gone', ADMIN)).body.shared_images,
      ).toHaveLength(2);
      await deleteMember(t, first.id, 'share-gone', owner1);
      expect(
        (await request(t.http).delete(`/v1/images/${second.id}`).set(owner1))
          .status,
      ).toBe(200);
      expect((await sharedWith(t, 'share-gone', ADMIN)).body).toEqual({
        shared_images: [],
      });
    });
  });

  describe('what sharing grants', () => {
    it('the member lists, reads and downloads a shared private image until unshared', async () => {
      expect(await listedIds(t, '/v1/images', MEMBER)).not.toContain(image.id);
      expect(
        (await request(t.http).head(`/v1/images/${image.id}`).set(MEMBER))
          .status,
      ).toBe(404);

      await putMember(t, image.id, 'tenant-b', OWNER);

      expect(await listedIds(t, '/v1/images', MEMBER)).toContain(image.id);
      expect(await listedIds(t, '/v1/images/detail', MEMBER)).toContain(
        image.id,
      );
      const head = await request(t.http)
        .head(`/v1/images/${image.id}`)
        .set(MEMBER);
      expect(head.status).toBe(200);
      expect(head.headers['x-image-meta-id']).toBe(image.id);
      const dl = await download(t, image.id, MEMBER);
      expect(dl.status).toBe(200);
      expect(Buffer.compare(dl.body, data)).toBe(0);

      // The other tenant never sees it.
      expect(await listedIds(t, '/v1/images', OTHER)).not.toContain(image.id);
      expect(await listedIds(t, '/v1/images/detail', OTHER)).not.toContain(
        image.id,
      );
      expect(
        (await request(t.http).head(`/v1/images/${image.id}`).set(OTHER))
          .status,
      ).toBe(404);
      expect((await download(t, image.id, OTHER)).status).toBe(404);

      expect((await deleteMember(t, image.id, 'tenant-b', OWNER)).status).toBe(
        204,
      );

      expect(await listedIds(t, '/v1/images', MEMBER)).not.toContain(image.id);
      expect(await listedIds(t, '/v1/images/detail', MEMBER)).not.toContain(
        image.id,
      );
      expect(
        (await request(t.http).head(`/v1/images/${image.id}`).set(MEMBER))
          .status,
      ).toBe(404);
      expect((await download(t, image.id, MEMBER)).status).toBe(404);
      expect((await membersOf(t, image.id, MEMBER)).status).toBe(404);
    });

    it('membership does not let the member modify the image', async () => {
      await putMember(t, image.id, 'tenant-b', OWNER, {
        member: { can_share: true },
      });
      const res = await request(t.http)
        .put(`/v1/images/${image.id}`)
        .set(MEMBER)
        .set('x-image-meta-name', 'renamed');
      expect([403, 404]).toContain(res.status);
      const head = await request(t.http)
        .head(`/v1/images/${image.id}`)
        .set(OWNER);
      expect(head.headers['x-image-meta-name']).toBe('private');
    });
  });

  describe('deleted images', () => {
    it('every members route answers 404 once the image is deleted', async () => {
      await putMember(t, image.id, 'tenant-b', OWNER);
      expect(
        (await request(t.http).delete(`/v1/images/${image.id}`).set(OWNER))
          .status,
      ).toBe(200);
      for (const auth of [OWNER, ADMIN]) {
        expect((await membersOf(t, image.id, auth)).status).toBe(404);
        expect((await putMember(t, image.id, 'tenant-c', auth)).status).toBe(
          404,
        );
        expect((await deleteMember(t, image.id, 'tenant-b', auth)).status).toBe(
          404,
        );
        const replace = await replaceMembers(t, image.id, auth, {
          memberships: [{ member_id: 'tenant-b', can_share: 'false' }],
        });
        expect(replace.status).toBe(404);
      }
      const adminView = await membersOf(t, image.id, ADMIN);
      expect(adminView.text).toContain(
        `Image with identifier ${image.id} has been deleted.`,
      );
    });
  });
});

describe('image member quota', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ IMAGE_MEMBER_QUOTA: '2' });
  });
  afterAll(async () => t.close());

  it('413 past IMAGE_MEMBER_QUOTA for single adds and replace-all; nothing changes', async () => {
    const image = await createImage(t, {}, OWNER);
    expect((await putMember(t, image.id, 'm1', OWNER)).status).toBe(204);
    expect((await putMember(t, image.id, 'm2', OWNER)).status).toBe(204);

    const third = await putMember(t, image.id, 'm3', OWNER);
    expect(third.status).toBe(413);
    expect(third.text).toContain('Attempted: 3, Maximum: 2');

    // Updating an existing member adds nobody.
    expect(
      (
        await putMember(t, image.id, 'm2', OWNER, {
          member: { can_share: true },
        })
      ).status,
    ).toBe(204);

    const over = await replaceMembers(t, image.id, ADMIN, {
      memberships: [{ member_id: 'a' }, { member_id: 'b' }, { member_id: 'c' }],
    });
    expect(over.status).toBe(413);
    expect(await memberIds(t, image.id)).toEqual([
      { member_id: 'm1', can_share: false },
      { member_id: 'm2', can_share: true },
    ]);

    const swap = await replaceMembers(t, image.id, OWNER, {
      memberships: [{ member_id: 'a' }, { member_id: 'b' }],
    });
    expect(swap.status).toBe(204);
    expect(await memberIds(t, image.id)).toEqual([
      { member_id: 'a', can_share: false },
      { member_id: 'b', can_share: false },
    ]);
  });

  it("a sharing member's replace-all counts the members it cannot see", async () => {
    const image = await createImage(t, {}, OWNER);
    await putMember(t, image.id, 'tenant-b', OWNER, {
      member: { can_share: true },
    });
    await putMember(t, image.id, 'm1', OWNER);
    const res = await replaceMembers(t, image.id, MEMBER, {
      memberships: [{ member_id: 'tenant-b' }, { member_id: 'm2' }],
    });
    expect(res.status).toBe(413);
    expect(res.text).toContain('Attempted: 3, Maximum: 2');
  });
});

describe('image member quota: negative is unlimited', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ IMAGE_MEMBER_QUOTA: '-1' });
  });
  afterAll(async () => t.close());

  it('accepts any number of members', async () => {
    const image = await createImage(t, {}, OWNER);
    const memberships = Array.from({ length: 150 }, (_, i) => ({
      member_id: `m${i}`,
    }));
    expect(
      (await replaceMembers(t, image.id, OWNER, { memberships })).status,
    ).toBe(204);
    expect((await putMember(t, image.id, 'one-more', OWNER)).status).toBe(204);
    expect(await memberIds(t, image.id)).toHaveLength(151);
  });
});

describe('image member policy actions', () => {
  let t: TestApp;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'glance-policy-'));
    const file = join(dir, 'policy.json');
    writeFileSync(
      file,
      JSON.stringify({
        default: '',
        get_members: 'role:admin',
        modify_member: 'role:admin',
        delete_member: 'role:admin',
      }),
    );
    t = await createTestApp({ POLICY_FILE: file });
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('get_members, modify_member and delete_member guard their routes (403)', async () => {
    const image = await createImage(t, {}, OWNER);
    expect((await membersOf(t, image.id, OWNER)).status).toBe(403);
    expect((await putMember(t, image.id, 'tenant-b', OWNER)).status).toBe(403);
    expect(
      (
        await replaceMembers(t, image.id, OWNER, {
          memberships: [{ member_id: 'tenant-b' }],
        })
      ).status,
    ).toBe(403);
    expect((await deleteMember(t, image.id, 'tenant-b', OWNER)).status).toBe(
      403,
    );
    // Policy is checked before visibility, as Glance's v1 API does.
    expect((await membersOf(t, image.id, OTHER)).status).toBe(403);

    expect((await putMember(t, image.id, 'tenant-b', ADMIN)).status).toBe(204);
    expect(await memberIds(t, image.id, ADMIN)).toEqual([
      { member_id: 'tenant-b', can_share: false },
    ]);
    expect((await deleteMember(t, image.id, 'tenant-b', ADMIN)).status).toBe(
      204,
    );
  });

  it('shared-images has no policy action', async () => {
    expect((await sharedWith(t, 'tenant-b', MEMBER)).status).toBe(200);
  });
});
