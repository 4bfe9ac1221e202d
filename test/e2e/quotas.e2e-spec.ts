import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  keystoneEnv,
  startFakeKeystone,
  type FakeKeystone,
} from '../support/fake-keystone.js';
import { expectError, storeFilesOf } from '../support/image-assertions.js';
import { createImage, metaHeaders } from '../support/image-builder.js';
import {
  chunksOf,
  portOf,
  rawRequest,
  type RawResponse,
} from '../support/raw-http.js';
import { ADMIN, as, createTestApp, type TestApp } from '../support/test-app.js';

const A = as('tenant-a');
const B = as('tenant-b');

async function statusOf(t: TestApp, id: string): Promise<string> {
  const res = await request(t.http).head(`/v1/images/${id}`).set(ADMIN);
  return res.status === 200
    ? res.headers['x-image-meta-status']
    : `HTTP ${res.status}`;
}

describe('IMAGE_PROPERTY_QUOTA=2', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ IMAGE_PROPERTY_QUOTA: '2' });
  });
  afterAll(async () => t?.close());

  const update = (
    id: string,
    props: Record<string, string>,
    purge?: string,
  ) => {
    const req = request(t.http).put(`/v1/images/${id}`).set(A);
    for (const [k, v] of Object.entries(props))
      req.set(`x-image-meta-property-${k}`, v);
    return purge === undefined
      ? req
      : req.set('x-glance-registry-purge-props', purge);
  };
  const propsOf = async (id: string) => {
    const res = await request(t.http).head(`/v1/images/${id}`).set(A);
    return Object.keys(res.headers)
      .filter((h) => h.startsWith('x-image-meta-property-'))
      .map((h) => h.slice('x-image-meta-property-'.length))
      .sort();
  };

  it('create: 2 properties are fine, 3 are a 413 and nothing is created', async () => {
    await createImage(t, { properties: { a: '1', b: '2' } }, A);
    const id = randomUUID();
    const res = await request(t.http)
      .post('/v1/images')
      .set(A)
      .set(metaHeaders({ id, properties: { a: '1', b: '2', c: '3' } }));
    expectError(res, 413, 'Attempted: 3, Maximum: 2');
    expect(await statusOf(t, id)).toBe('HTTP 404');
  });

  it('update with purge (the default) counts only the properties sent', async () => {
    const image = await createImage(t, { properties: { a: '1', b: '2' } }, A);
    expect((await update(image.id, { c: '3', d: '4' })).status).toBe(200);
    expect(await propsOf(image.id)).toEqual(['c', 'd']);
    expectError(
      await update(image.id, { c: '3', d: '4', e: '5' }, 'true'),
      413,
      'Attempted: 3, Maximum: 2',
    );
    expect(await propsOf(image.id)).toEqual(['c', 'd']);
  });

  it('update without purge counts the kept properties too', async () => {
    const image = await createImage(t, { properties: { a: '1', b: '2' } }, A);
    expectError(
      await update(image.id, { c: '3' }, 'false'),
      413,
      'Attempted: 3, Maximum: 2',
    );
    expect(await propsOf(image.id)).toEqual(['a', 'b']);
    // Changing an existing property adds nothing.
    expect((await update(image.id, { a: 'changed' }, 'false')).status).toBe(
      200,
    );
    expect(await propsOf(image.id)).toEqual(['a', 'b']);
  });
});

describe('IMAGE_COUNT_QUOTA=2', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ IMAGE_COUNT_QUOTA: '2' });
  });
  afterAll(async () => t?.close());

  it('counts per owner; deleted images do not count', async () => {
    const first = await createImage(t, { name: 'a1' }, A);
    await createImage(t, { name: 'a2' }, A);
    const third = await request(t.http)
      .post('/v1/images')
      .set(A)
      .set(metaHeaders({ name: 'a3' }));
    expectError(third, 413, 'Attempted: 3, Maximum: 2');

    // Another owner has its own count.
    await createImage(t, { name: 'b1' }, B);
    await createImage(t, { name: 'b2' }, B);

    await request(t.http).delete(`/v1/images/${first.id}`).set(A).expect(200);
    await createImage(t, { name: 'a3' }, A);
    const fourth = await request(t.http)
      .post('/v1/images')
      .set(A)
      .set(metaHeaders({ name: 'a4' }));
    expect(fourth.status).toBe(413);
  });
});

describe('USER_STORAGE_QUOTA=1000', () => {
  const QUOTA = 1000;
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await createTestApp({ USER_STORAGE_QUOTA: String(QUOTA) });
    port = await portOf(t);
  });
  afterAll(async () => t?.close());

  /** Sends `sent` bytes of a body announced by `headers`, then waits for the answer without ending it. */
  async function unfinishedUpload(
    method: string,
    path: string,
    headers: Record<string, string>,
    sent: number,
    auth = A,
  ): Promise<RawResponse> {
    const body = new PassThrough();
    body.write(Buffer.alloc(sent, 1));
    const answer = rawRequest(port, {
      method,
      path,
      headers: {
        ...auth,
        'content-type': 'application/octet-stream',
        ...headers,
      },
      body,
    });
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error('the server waited for the rest of the body')),
        3000,
      ),
    );
    try {
      return await Promise.race([answer, timeout]);
    } finally {
      body.destroy();
    }
  }

  const upload = (data: Buffer, auth = A, name = 'img') =>
    request(t.http)
      .post('/v1/images')
      .set(auth)
      .set(metaHeaders({ name }))
      .set('Content-Type', 'application/octet-stream')
      .send(data);

  it('a declared x-image-meta-size over the remaining quota is a 413 before the body is read', async () => {
    const id = randomUUID();
    const res = await unfinishedUpload(
      'POST',
      '/v1/images',
      {
        ...metaHeaders({ id, size: QUOTA + 500 }),
        'content-length': String(QUOTA + 500),
      },
      10,
    );
    expect(res.status).toBe(413);
    expect(res.body.toString()).toContain('exceeds the quota');
    expect(storeFilesOf(t, id)).toEqual([]);
    // As in Glance, the image whose upload was refused is killed: it holds no quota.
    expect(await statusOf(t, id)).toBe('killed');
    const fits = await upload(Buffer.alloc(QUOTA, 2), as('tenant-a'));
    expect(fits.status).toBe(201);
    await request(t.http)
      .delete(`/v1/images/${fits.body.image.id}`)
      .set(A)
      .expect(200);
  });

  it('a declared size over the quota on PUT to a queued image is refused the same way', async () => {
    const image = await createImage(t, { name: 'reserved' }, A);
    const res = await unfinishedUpload(
      'PUT',
      `/v1/images/${image.id}`,
      {
        'x-image-meta-size': String(QUOTA + 1),
        'content-length': String(QUOTA + 1),
      },
      10,
    );
    expect(res.status).toBe(413);
    expect(storeFilesOf(t, image.id)).toEqual([]);
    expect(await statusOf(t, image.id)).toBe('killed');
  });

  it('a chunked upload over the remaining quota is a 413 while streaming: killed, no file left', async () => {
    const id = randomUUID();
    const body = new PassThrough();
    const answer = rawRequest(port, {
      method: 'POST',
      path: '/v1/images',
      headers: {
        ...A,
        ...metaHeaders({ id }),
        'content-type': 'application/octet-stream',
      },
      body,
    });
    // Stop writing once over the quota: bytes in flight when the server closes would reset it.
    for (const chunk of chunksOf(QUOTA + 200, 6)) {
      body.write(chunk);
      await new Promise((r) => setTimeout(r, 5));
    }
    const res = await answer;
    body.destroy();
    expect(res.status).toBe(413);
    expect(res.body.toString()).toContain(
      `the remaining storage is ${QUOTA} bytes`,
    );
    expect(await statusOf(t, id)).toBe('killed');
    expect(storeFilesOf(t, id)).toEqual([]);
  });

  it('is per owner, and deleting an image frees its share of the quota', async () => {
    const first = await upload(Buffer.alloc(800, 3));
    expect(first.status).toBe(201);
    const second = await upload(Buffer.alloc(300, 3));
    expectError(second, 413, 'the remaining storage is 200 bytes');
    // Another tenant's usage is its own.
    expect((await upload(Buffer.alloc(800, 3), B)).status).toBe(201);

    await request(t.http)
      .delete(`/v1/images/${first.body.image.id}`)
      .set(A)
      .expect(200);
    const third = await upload(Buffer.alloc(300, 3));
    expect(third.status).toBe(201);
    expect(third.body.image.status).toBe('active');
  });
});

describe('IMAGE_MEMBER_QUOTA=2', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ IMAGE_MEMBER_QUOTA: '2' });
  });
  afterAll(async () => t?.close());

  it('a third member is a 413; re-adding an existing one is fine; removing frees a slot', async () => {
    const { id } = await createImage(t, { name: 'shared' }, A);
    const put = (member: string) =>
      request(t.http).put(`/v1/images/${id}/members/${member}`).set(A);
    expect((await put('m1')).status).toBe(204);
    expect((await put('m2')).status).toBe(204);
    expectError(await put('m3'), 413, 'Attempted: 3, Maximum: 2');
    expect((await put('m2')).status).toBe(204);
    const replace = await request(t.http)
      .put(`/v1/images/${id}/members`)
      .set(A)
      .set('Content-Type', 'application/json')
      .send(
        JSON.stringify({
          memberships: [
            { member_id: 'x' },
            { member_id: 'y' },
            { member_id: 'z' },
          ],
        }),
      );
    expect(replace.status).toBe(413);
    await request(t.http)
      .delete(`/v1/images/${id}/members/m1`)
      .set(A)
      .expect(204);
    expect((await put('m3')).status).toBe(204);
    const members = await request(t.http)
      .get(`/v1/images/${id}/members`)
      .set(A);
    expect(
      members.body.members.map((m: { member_id: string }) => m.member_id),
    ).toEqual(['m2', 'm3']);
  });
});

describe('RATE_LIMIT_PER_MINUTE=3', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ RATE_LIMIT_PER_MINUTE: '3' });
  });
  afterAll(async () => t?.close());

  it('the 4th mutating request is a 429 with Retry-After; reads are never limited; tenants have their own budget', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push((await createImage(t, { name: `r${i}` }, A)).id);
    const limited = [
      await request(t.http)
        .post('/v1/images')
        .set(A)
        .set(metaHeaders({ name: 'r4' })),
      await request(t.http)
        .put(`/v1/images/${ids[0]}`)
        .set(A)
        .set('x-image-meta-name', 'x'),
      await request(t.http).delete(`/v1/images/${ids[0]}`).set(A),
      await request(t.http).put(`/v1/images/${ids[0]}/members/tenant-b`).set(A),
    ];
    for (const res of limited) {
      expectError(res, 429, 'Rate limit exceeded');
      const retryAfter = Number(res.headers['retry-after']);
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
    }
    expect(
      (await request(t.http).head(`/v1/images/${ids[0]}`).set(A)).headers[
        'x-image-meta-name'
      ],
    ).toBe('r0');

    for (let i = 0; i < 10; i++) {
      expect((await request(t.http).get('/v1/images').set(A)).status).toBe(200);
      expect(
        (await request(t.http).head(`/v1/images/${ids[1]}`).set(A)).status,
      ).toBe(200);
      expect(
        (await request(t.http).get(`/v1/images/${ids[1]}/members`).set(A))
          .status,
      ).toBe(200);
    }

    for (let i = 0; i < 3; i++) await createImage(t, { name: `b${i}` }, B);
    expect(
      (await request(t.http).post('/v1/images').set(B).set(metaHeaders()))
        .status,
    ).toBe(429);
  });
});

describe('RATE_LIMIT_PER_MINUTE=3 with AUTH_STRATEGY=keystone', () => {
  let ks: FakeKeystone;
  let t: TestApp;
  beforeAll(async () => {
    ks = await startFakeKeystone();
    t = await createTestApp(
      keystoneEnv(ks.url, { RATE_LIMIT_PER_MINUTE: '3' }),
    );
  });
  afterAll(async () => {
    await t?.close();
    await ks?.close();
  });

  it("the budget follows the token's project, not a client-sent X-Tenant-Id", async () => {
    const one = { 'X-Auth-Token': ks.issueToken({ projectId: 'proj-1' }) };
    const two = { 'X-Auth-Token': ks.issueToken({ projectId: 'proj-2' }) };
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await request(t.http)
        .post('/v1/images')
        .set(one)
        .set('X-Tenant-Id', `spoofed-${i}`)
        .set(metaHeaders({ name: `k${i}` }));
      statuses.push(res.status);
    }
    expect(statuses).toEqual([201, 201, 201, 429]);
    // Another project behind the same address has its own budget.
    expect(
      (await request(t.http).post('/v1/images').set(two).set(metaHeaders()))
        .status,
    ).toBe(201);
  });
});
