import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createImage } from '../support/image-builder.js';
import { createTestApp, type TestApp } from '../support/test-app.js';

function expectVersions(res: request.Response): void {
  expect(res.status).toBe(300);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = JSON.parse(res.text);
  expect(
    body.versions.map((v: { id: string; status: string }) => [v.id, v.status]),
  ).toEqual([
    ['v1.1', 'CURRENT'],
    ['v1.0', 'SUPPORTED'],
  ]);
  for (const v of body.versions) {
    expect(v.links).toEqual([
      {
        rel: 'self',
        href: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/v1\/$/),
      },
    ]);
  }
}

describe('version negotiation', () => {
  let t: TestApp;
  let imageId: string;
  beforeAll(async () => {
    t = await createTestApp();
    imageId = (
      await createImage(t, { name: 'versioned', is_public: true, size: 0 })
    ).id;
  });
  afterAll(async () => t.close());

  it.each([
    '/',
    '/versions',
    '/v1',
    '/v2/images',
    '/v2',
    '/foo',
    '/foo/images',
    '/v1.2/images',
    '/images',
  ])('GET %s answers the versions document with 300', async (path) => {
    expectVersions(await request(t.http).get(path));
  });

  it('answers 300 for the versions document whatever the method', async () => {
    expectVersions(await request(t.http).post('/v3/images'));
  });

  it.each(['/v1/images', '/v1.0/images', '/v1.1/images'])(
    'GET %s lists images',
    async (path) => {
      const res = await request(t.http).get(path);
      expect(res.status).toBe(200);
      expect(res.body.images.map((i: { id: string }) => i.id)).toContain(
        imageId,
      );
    },
  );

  it('routes v1.0 and v1.1 paths below /images too', async () => {
    for (const prefix of ['/v1.0', '/v1.1']) {
      const head = await request(t.http).head(`${prefix}/images/${imageId}`);
      expect(head.status).toBe(200);
      expect(head.headers['x-image-meta-name']).toBe('versioned');
      const detail = await request(t.http).get(
        `${prefix}/images/detail?name=versioned`,
      );
      expect(detail.body.images).toHaveLength(1);
    }
  });

  it('keeps the query string when rewriting the path', async () => {
    const res = await request(t.http).get('/v1.1/images?name=no-such-name');
    expect(res.status).toBe(200);
    expect(res.body.images).toEqual([]);
  });

  it('routes an unversioned path to v1 with Accept: application/vnd.openstack.images-v1', async () => {
    const res = await request(t.http)
      .get('/images')
      .set('Accept', 'application/vnd.openstack.images-v1');
    expect(res.status).toBe(200);
    expect(res.body.images.map((i: { id: string }) => i.id)).toContain(imageId);

    const head = await request(t.http)
      .head(`/images/${imageId}`)
      .set('Accept', 'application/vnd.openstack.images-v1.1');
    expect(head.status).toBe(200);
    expect(head.headers['x-image-meta-id']).toBe(imageId);
  });

  it('answers 300 for an Accept header naming an unknown version', async () => {
    expectVersions(
      await request(t.http)
        .get('/images')
        .set('Accept', 'application/vnd.openstack.images-v2'),
    );
  });
});
