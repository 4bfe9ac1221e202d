import { randomUUID } from 'node:crypto';
import http from 'node:http';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageRegistry } from '../../src/registry/image.registry.js';
import {
  expectError,
  storeFiles,
  storeFilesOf,
  waitFor,
} from '../support/image-assertions.js';
import { createImage, metaHeaders } from '../support/image-builder.js';
import { portOf, rawRequest } from '../support/raw-http.js';
import { ADMIN, as, createTestApp, type TestApp } from '../support/test-app.js';

const A = as('tenant-a');
const B = as('tenant-b');
const QUOTA = 1000;

describe('image integrity', () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await createTestApp({ USER_STORAGE_QUOTA: String(QUOTA) });
    port = await portOf(t);
  });
  afterAll(async () => t?.close());

  const statusOf = async (id: string): Promise<string> => {
    const res = await request(t.http).head(`/v1/images/${id}`).set(ADMIN);
    return res.status === 200
      ? res.headers['x-image-meta-status']
      : `HTTP ${res.status}`;
  };

  describe('ids of deleted images are never reused (OSSN-0075)', () => {
    it.each([
      ['the same tenant', A],
      ['another tenant', B],
      ['an admin', ADMIN],
    ])(
      'a create by %s with a deleted image id is a 409',
      async (_who, auth) => {
        const id = randomUUID();
        await createImage(
          t,
          { id, name: 'original', data: Buffer.from('original') },
          A,
        );
        await request(t.http).delete(`/v1/images/${id}`).set(A).expect(200);
        const res = await request(t.http)
          .post('/v1/images')
          .set(auth)
          .set(metaHeaders({ id, name: 'impostor' }));
        expectError(res, 409, id);
        const head = await request(t.http).head(`/v1/images/${id}`).set(ADMIN);
        expect(head.headers).toMatchObject({
          'x-image-meta-status': 'deleted',
          'x-image-meta-name': 'original',
          'x-image-meta-owner': 'tenant-a',
        });
        expect(
          (
            await request(t.http)
              .head(`/v1/images/${id}`)
              .set(auth === ADMIN ? A : auth)
          ).status,
        ).toBe(404);
      },
    );
  });

  describe('x-image-meta-status from clients is ignored', () => {
    it('a create claiming active is queued', async () => {
      const res = await request(t.http)
        .post('/v1/images')
        .set(A)
        .set(metaHeaders({ headers: { 'x-image-meta-status': 'active' } }));
      expect(res.status).toBe(201);
      expect(res.body.image.status).toBe('queued');
      expect(await statusOf(res.body.image.id)).toBe('queued');
    });

    it('an active image never goes back to queued, so it cannot be overwritten', async () => {
      const data = Buffer.from('first bytes');
      const image = await createImage(t, { data }, A);
      for (const status of ['queued', 'saving', 'killed', 'deleted']) {
        const res = await request(t.http)
          .put(`/v1/images/${image.id}`)
          .set(A)
          .set('x-image-meta-status', status);
        expect(res.status).toBe(200);
        expect(res.body.image.status).toBe('active');
      }
      const overwrite = await request(t.http)
        .put(`/v1/images/${image.id}`)
        .set(A)
        .set('Content-Type', 'application/octet-stream')
        .send(Buffer.from('other bytes'));
      expect(overwrite.status).toBe(409);
      const download = await request(t.http)
        .get(`/v1/images/${image.id}`)
        .set(A);
      expect(download.headers['x-image-meta-checksum']).toBe(image.checksum);
    });

    it('an admin cannot set the status either', async () => {
      const image = await createImage(t, {}, A);
      const res = await request(t.http)
        .put(`/v1/images/${image.id}`)
        .set(ADMIN)
        .set('x-image-meta-status', 'active');
      expect(res.status).toBe(200);
      expect(await statusOf(image.id)).toBe('queued');
    });
  });

  describe('deleting an image while it is saving', () => {
    it('stops the upload, removes the bytes written so far and frees the quota', async () => {
      const owner = as('tenant-s');
      const { id } = await createImage(t, { name: 'slow' }, owner);
      const req = http.request({
        host: '127.0.0.1',
        port,
        method: 'PUT',
        path: `/v1/images/${id}`,
        headers: { ...owner, 'content-type': 'application/octet-stream' },
        agent: false,
      });
      const outcome = new Promise<string>((resolve) => {
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve(`HTTP ${res.statusCode}`));
          res.on('error', () => resolve('aborted'));
        });
        req.on('error', (err) => resolve(`error ${err.message}`));
      });
      req.write(Buffer.alloc(300, 1));
      await waitFor(
        async () => (await statusOf(id)) === 'saving',
        'the upload to start',
      );
      await waitFor(
        () => storeFilesOf(t, id).length > 0,
        'bytes to reach the store',
      );

      expect(
        (await request(t.http).delete(`/v1/images/${id}`).set(owner)).status,
      ).toBe(200);
      // The client keeps sending: the upload must not come back to life.
      req.write(Buffer.alloc(300, 2), () => undefined);

      const result = await outcome;
      expect(result).not.toBe('HTTP 200');
      expect(result).not.toBe('HTTP 201');
      req.destroy();

      await waitFor(
        () => storeFilesOf(t, id).length === 0,
        'the partial file to be removed',
      );
      expect(storeFiles(t).filter((f) => f.endsWith('.part'))).toEqual([]);
      expect(await statusOf(id)).toBe('deleted');
      expect(await t.app.get(ImageRegistry).storageUsedBy('tenant-s')).toBe(0);

      // The whole quota is free again.
      const full = await request(t.http)
        .post('/v1/images')
        .set(owner)
        .set(metaHeaders({ name: 'full' }))
        .set('Content-Type', 'application/octet-stream')
        .send(Buffer.alloc(QUOTA, 3));
      expect(full.status).toBe(201);
      expect(full.body.image.status).toBe('active');
    });
  });

  describe('malformed ids are 4xx on every route, never 5xx', () => {
    // Member and tenant ids are free-form in Glance (any string up to 255): never a 5xx there.
    const BAD_IDS = [
      '..',
      '%2E%2E',
      '%2F',
      'a%2Fb',
      '..%2F..%2Fetc%2Fpasswd',
      '%00',
      'abc%00def',
      'x'.repeat(300),
      'a%20b',
      '%20',
      '%ZZ',
      '%E2%82%AC',
      '%FF',
    ];
    let good: string;
    beforeAll(async () => {
      good = (await createImage(t, { name: 'good', data: Buffer.from('x') }, A))
        .id;
    });

    const routes: [
      string,
      string,
      (bad: string) => string,
      Record<string, string>?,
      Buffer?,
    ][] = [
      ['HEAD', 'HEAD', (bad) => `/v1/images/${bad}`],
      ['GET', 'GET', (bad) => `/v1/images/${bad}`],
      [
        'PUT metadata',
        'PUT',
        (bad) => `/v1/images/${bad}`,
        { 'x-image-meta-name': 'x' },
      ],
      [
        'PUT upload',
        'PUT',
        (bad) => `/v1/images/${bad}`,
        { 'content-type': 'application/octet-stream' },
        Buffer.from('abc'),
      ],
      ['DELETE', 'DELETE', (bad) => `/v1/images/${bad}`],
      ['GET members', 'GET', (bad) => `/v1/images/${bad}/members`],
      [
        'PUT members',
        'PUT',
        (bad) => `/v1/images/${bad}/members`,
        { 'content-type': 'application/json' },
        Buffer.from('{"memberships": []}'),
      ],
      ['PUT member', 'PUT', (bad) => `/v1/images/${bad}/members/tenant-b`],
      [
        'DELETE member',
        'DELETE',
        (bad) => `/v1/images/${bad}/members/tenant-b`,
      ],
      [
        'PUT member (bad member id)',
        'PUT',
        (bad) => `/v1/images/${good}/members/${bad}`,
      ],
      [
        'DELETE member (bad member id)',
        'DELETE',
        (bad) => `/v1/images/${good}/members/${bad}`,
      ],
      ['GET shared-images', 'GET', (bad) => `/v1/shared-images/${bad}`],
      ['GET list marker', 'GET', (bad) => `/v1/images?marker=${bad}`],
      ['GET detail marker', 'GET', (bad) => `/v1/images/detail?marker=${bad}`],
    ];

    it.each(routes)('%s', async (_name, method, path, headers = {}, body) => {
      const statuses: Record<string, number> = {};
      for (const auth of [A, ADMIN]) {
        for (const bad of BAD_IDS) {
          const length: Record<string, string> = body
            ? { 'content-length': String(body.length) }
            : {};
          const res = await rawRequest(port, {
            method,
            path: path(bad),
            headers: { ...auth, ...headers, ...length },
            body,
          });
          statuses[`${auth['X-Tenant-Id']} ${bad.slice(0, 30)}`] = res.status;
        }
      }
      const freeForm = /\/(members|shared-images)\/BAD$/.test(path('BAD'));
      for (const [what, status] of Object.entries(statuses)) {
        if (freeForm) expect(status < 500, `${what}: ${status}`).toBe(true);
        else
          expect(status >= 400 && status < 500, `${what}: ${status}`).toBe(
            true,
          );
      }
      // Nothing about the good image changed.
      const head = await request(t.http).head(`/v1/images/${good}`).set(A);
      expect(head.headers['x-image-meta-status']).toBe('active');
      expect(head.headers['x-image-meta-name']).toBe('good');
    });

    it('member ids with control characters are a 400 on every members route', async () => {
      for (const member of ['a\u0000b', 'tab\there', 'nl\n']) {
        const replace = await request(t.http)
          .put(`/v1/images/${good}/members`)
          .set(A)
          .set('Content-Type', 'application/json')
          .send(JSON.stringify({ memberships: [{ member_id: member }] }));
        expectError(replace, 400, 'control characters');
        const path = `/v1/images/${good}/members/${encodeURIComponent(member)}`;
        expect((await request(t.http).put(path).set(A)).status).toBe(400);
        expect((await request(t.http).delete(path).set(A)).status).toBe(400);
        const shared = await request(t.http)
          .get(`/v1/shared-images/${encodeURIComponent(member)}`)
          .set(ADMIN);
        expect(shared.body).toEqual({ shared_images: [] });
      }
    });

    it('a malformed x-image-meta-id on create is a 400 and creates nothing', async () => {
      for (const id of [
        '..',
        '../x',
        'a b',
        'x'.repeat(300),
        'ABCDEF00-0000-0000-0000-000000000000',
      ]) {
        const res = await request(t.http)
          .post('/v1/images')
          .set(A)
          .set(metaHeaders({ id }));
        expect(res.status, id).toBe(400);
      }
    });
  });
});
