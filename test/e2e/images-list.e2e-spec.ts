import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectError,
  expectNoLocations,
  md5,
  tick,
} from '../support/image-assertions.js';
import {
  createImage,
  metaHeaders,
  type ImageSpec,
} from '../support/image-builder.js';
import { ADMIN, as, createTestApp, type TestApp } from '../support/test-app.js';

type Listed = Record<string, any>;

const A = as('tenant-a');
const B = as('tenant-b');
const SORT_KEYS = [
  'name',
  'status',
  'container_format',
  'disk_format',
  'size',
  'id',
  'created_at',
  'updated_at',
];

describe('GET /v1/images and /v1/images/detail', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ LIMIT_PARAM_DEFAULT: '4' });
  });
  afterAll(async () => t?.close());

  async function list(
    query: Record<string, string | number>,
    auth: Record<string, string> = {},
    path = '/v1/images/detail',
  ): Promise<Listed[]> {
    const res = await request(t.http)
      .get(path)
      .query({ limit: 1000, ...query })
      .set(auth);
    expect(res.status, res.text).toBe(200);
    expectNoLocations(res.body);
    return res.body.images;
  }
  const ids = async (...args: Parameters<typeof list>) =>
    (await list(...args)).map((i) => i.id);
  const sorted = async (...args: Parameters<typeof list>) =>
    (await ids(...args)).sort();
  const make = (
    set: string,
    spec: ImageSpec = {},
    auth: Record<string, string> = A,
  ) =>
    createImage(t, { ...spec, properties: { set, ...spec.properties } }, auth);

  describe('brief and detailed listings', () => {
    let image: Listed;
    beforeAll(async () => {
      image = await make('shape', {
        is_public: true,
        data: Buffer.from('shape data'),
        properties: { k: 'v' },
      });
    });

    it('GET /v1/images shows only id, name, size, formats and checksum', async () => {
      const [brief] = await list({ 'property-set': 'shape' }, A, '/v1/images');
      expect(brief).toEqual({
        id: image.id,
        name: 'test-image',
        size: 10,
        disk_format: 'raw',
        container_format: 'bare',
        checksum: md5(Buffer.from('shape data')),
      });
    });

    it('GET /v1/images/detail shows every field and the properties', async () => {
      const [detail] = await list({ 'property-set': 'shape' }, A);
      expect(detail).toMatchObject({
        id: image.id,
        name: 'test-image',
        size: 10,
        status: 'active',
        is_public: true,
        protected: false,
        min_ram: 0,
        min_disk: 0,
        owner: 'tenant-a',
        deleted: false,
        deleted_at: null,
        checksum: md5(Buffer.from('shape data')),
        properties: { set: 'shape', k: 'v' },
      });
      for (const key of [
        'created_at',
        'updated_at',
        'disk_format',
        'container_format',
      ]) {
        expect(detail).toHaveProperty(key);
      }
      expect(detail).not.toHaveProperty('location');
      expect(detail).not.toHaveProperty('location_data');
    });
  });

  describe('default order and limits', () => {
    const created: string[] = [];
    beforeAll(async () => {
      for (let i = 0; i < 6; i++) {
        created.push((await make('order', { name: `order-${i}` })).id);
        await tick();
      }
    });

    it('sorts by created_at, newest first', async () => {
      expect(await ids({ 'property-set': 'order' }, A)).toEqual(
        [...created].reverse(),
      );
      const asc = await ids({ 'property-set': 'order', sort_dir: 'asc' }, A);
      expect(asc).toEqual(created);
    });

    it('returns LIMIT_PARAM_DEFAULT images without a limit, and none with limit=0', async () => {
      const res = await request(t.http)
        .get('/v1/images')
        .query({ 'property-set': 'order' })
        .set(A);
      expect(res.body.images).toHaveLength(4);
      expect(await ids({ 'property-set': 'order', limit: 0 }, A)).toEqual([]);
      expect(await ids({ 'property-set': 'order', limit: 2 }, A)).toEqual([
        created[5],
        created[4],
      ]);
    });
  });

  describe('filters', () => {
    let alpha: Listed, beta: Listed, gamma: Listed;
    beforeAll(async () => {
      alpha = await make('filters', {
        name: 'alpha',
        disk_format: 'qcow2',
        container_format: 'ovf',
        is_public: true,
        protected: true,
        data: Buffer.alloc(100, 1),
        headers: {
          'x-image-meta-min_ram': '512',
          'x-image-meta-min_disk': '10',
        },
        properties: { os: 'linux', arch: 'x86_64' },
      });
      beta = await make('filters', {
        name: 'beta',
        is_public: true,
        data: Buffer.alloc(200, 2),
        properties: { os: 'linux' },
      });
      gamma = await make('filters', {
        name: 'gamma',
        properties: { os: 'windows' },
      });
    });
    const f = (query: Record<string, string | number>) =>
      sorted({ 'property-set': 'filters', ...query }, A);
    const expected = (...images: Listed[]) => images.map((i) => i.id).sort();

    it('name', async () => {
      expect(await f({ name: 'alpha' })).toEqual(expected(alpha));
      expect(await f({ name: 'alp' })).toEqual([]);
    });
    it('status', async () => {
      expect(await f({ status: 'queued' })).toEqual(expected(gamma));
      expect(await f({ status: 'active' })).toEqual(expected(alpha, beta));
    });
    it('container_format and disk_format', async () => {
      expect(await f({ container_format: 'ovf' })).toEqual(expected(alpha));
      expect(await f({ disk_format: 'raw' })).toEqual(expected(beta, gamma));
      expect(await f({ disk_format: 'raw', container_format: 'ovf' })).toEqual(
        [],
      );
    });
    it('min_ram and min_disk', async () => {
      expect(await f({ min_ram: 512 })).toEqual(expected(alpha));
      expect(await f({ min_disk: 10 })).toEqual(expected(alpha));
      expect(await f({ min_ram: 0 })).toEqual(expected(beta, gamma));
    });
    it('size_min and size_max, inclusive', async () => {
      expect(await f({ size_min: 150 })).toEqual(expected(beta));
      expect(await f({ size_min: 100 })).toEqual(expected(alpha, beta));
      expect(await f({ size_max: 100 })).toEqual(expected(alpha, gamma));
      expect(await f({ size_min: 100, size_max: 199 })).toEqual(
        expected(alpha),
      );
    });
    it('is_public', async () => {
      expect(await f({ is_public: 'true' })).toEqual(expected(alpha, beta));
      expect(await f({ is_public: 'False' })).toEqual(expected(gamma));
    });
    it('protected', async () => {
      expect(await f({ protected: 'true' })).toEqual(expected(alpha));
      expect(await f({ protected: 'False' })).toEqual(expected(beta, gamma));
      expect(await f({ protected: '1' })).toEqual(expected(alpha));
    });
    it('property-<key>, all of them', async () => {
      expect(await f({ 'property-os': 'linux' })).toEqual(
        expected(alpha, beta),
      );
      expect(
        await f({ 'property-os': 'linux', 'property-arch': 'x86_64' }),
      ).toEqual(expected(alpha));
      expect(await f({ 'property-os': 'beos' })).toEqual([]);
    });
    it('several filters at once', async () => {
      expect(
        await f({ status: 'active', 'property-os': 'linux', size_max: 150 }),
      ).toEqual(expected(alpha));
    });
    it('changes-since', async () => {
      const [before] = await list(
        { 'property-set': 'filters', sort_key: 'updated_at', limit: 1 },
        A,
      );
      await tick(5);
      const res = await request(t.http)
        .put(`/v1/images/${gamma.id}`)
        .set(A)
        .set({
          'x-image-meta-min_disk': '1',
          'x-glance-registry-purge-props': 'false',
        });
      expect(res.status).toBe(200);
      expect(await f({ 'changes-since': before.updated_at })).toEqual(
        expected(gamma),
      );
      expect(
        await f({ 'changes-since': `${before.updated_at.slice(0, 19)}Z` }),
      ).toContain(gamma.id);
      expect(await f({ 'changes-since': '2000-01-01T00:00:00+02:00' })).toEqual(
        expected(alpha, beta, gamma),
      );
      expect(await f({ 'changes-since': '2999-01-01T00:00:00' })).toEqual([]);
    });
    it('applies to the brief listing too', async () => {
      const brief = await list(
        { 'property-set': 'filters', name: 'beta' },
        A,
        '/v1/images',
      );
      expect(brief.map((i) => i.id)).toEqual([beta.id]);
    });
  });

  describe('invalid parameters', () => {
    it.each([
      [{ size_min: 'abc' }, 'Bad value passed to filter size_min got abc'],
      [{ size_max: '-5' }, 'Bad value passed to filter size_max got -5'],
      [{ min_ram: 'lots' }, 'Bad value passed to filter min_ram got lots'],
      [{ min_disk: '1.5' }, 'Bad value passed to filter min_disk got 1.5'],
      [{ limit: 'abc' }, 'limit param must be an integer'],
      [{ limit: '-1' }, 'limit param must be positive'],
      [
        { sort_key: 'foo' },
        'Unsupported sort_key. Acceptable values: name, status, container_format, disk_format, size, id, created_at, updated_at',
      ],
      [
        { sort_dir: 'up' },
        'Unsupported sort_dir. Acceptable values: asc, desc',
      ],
      [{ marker: 'not-a-uuid' }, 'Invalid marker format'],
      [{ marker: randomUUID() }, 'Invalid marker. Image could not be found.'],
      [{ 'changes-since': 'garbage' }, 'Unrecognized changes-since value'],
      [{ protected: 'maybe' }, 'protected must be True, or False'],
      [{ is_public: 'maybe' }, 'is_public must be None, True, or False'],
    ] as [Record<string, string>, string][])(
      '%j → 400',
      async (query, message) => {
        for (const path of ['/v1/images', '/v1/images/detail']) {
          expectError(
            await request(t.http).get(path).query(query).set(ADMIN),
            400,
            message,
          );
        }
      },
    );

    it('refuses a marker the caller cannot see', async () => {
      const hidden = await make('hidden-marker', {}, B);
      expectError(
        await request(t.http)
          .get('/v1/images')
          .query({ marker: hidden.id })
          .set(A),
        400,
        'Invalid marker. Image could not be found.',
      );
    });
  });

  describe('pagination with limit and marker', () => {
    let all: Listed[];
    beforeAll(async () => {
      // Ties and NULLs on every sort key: several names, sizes and formats repeat or are missing.
      const specs: ImageSpec[] = [
        { headers: { 'x-image-meta-name': '' }, data: Buffer.alloc(3) },
        { name: 'b', data: Buffer.alloc(5) },
        {
          name: 'a',
          data: Buffer.alloc(5),
          disk_format: 'qcow2',
          container_format: 'ovf',
        },
        { name: 'b' },
        { headers: { 'x-image-meta-name': '' } },
        { name: 'c', disk_format: 'vmdk', data: Buffer.alloc(7) },
        { name: 'a', data: Buffer.alloc(5) },
        { name: 'b', size: 0 },
      ];
      for (const spec of specs) await make('paging', spec);
      const noFormats = await request(t.http).post('/v1/images').set(A).set({
        'x-image-meta-name': 'b',
        'x-image-meta-property-set': 'paging',
      });
      expect(noFormats.body.image).toMatchObject({
        disk_format: null,
        container_format: null,
      });
      // A tenant-b private image in the middle must not appear in tenant-a's pages.
      await make('paging', { name: 'b' }, B);
      all = await list({ 'property-set': 'paging' }, A);
      expect(all).toHaveLength(9);
    });

    const sortValue = (image: Listed, key: string) =>
      image[key] ?? (key === 'size' ? -1 : '');

    it.each(SORT_KEYS)(
      'walks every page sorted by %s with no duplicates or gaps',
      async (sortKey) => {
        for (const sortDir of ['asc', 'desc']) {
          const full = await list(
            { 'property-set': 'paging', sort_key: sortKey, sort_dir: sortDir },
            A,
          );
          expect(full.map((i) => i.id).sort()).toEqual(
            all.map((i) => i.id).sort(),
          );
          for (let n = 1; n < full.length; n++) {
            const [prev, cur] = [
              sortValue(full[n - 1], sortKey),
              sortValue(full[n], sortKey),
            ];
            if (sortDir === 'asc')
              expect(prev <= cur, `${sortKey} asc at ${n}`).toBe(true);
            else expect(prev >= cur, `${sortKey} desc at ${n}`).toBe(true);
          }
          for (const limit of [1, 3]) {
            const walked: string[] = [];
            let marker: string | undefined;
            for (let page = 0; page < 20; page++) {
              const query: Record<string, string | number> = {
                'property-set': 'paging',
                sort_key: sortKey,
                sort_dir: sortDir,
                limit,
              };
              if (marker) query.marker = marker;
              const got = await ids(query, A, '/v1/images');
              walked.push(...got);
              if (got.length < limit) break;
              marker = got[got.length - 1];
            }
            expect(walked, `${sortKey} ${sortDir} limit ${limit}`).toEqual(
              full.map((i) => i.id),
            );
          }
        }
      },
    );

    it('ends with an empty page after the last image', async () => {
      const last = all[all.length - 1].id;
      expect(await ids({ 'property-set': 'paging', marker: last }, A)).toEqual(
        [],
      );
    });
  });

  describe('killed and deleted images', () => {
    // A deleted image loses its properties (as in Glance), so these are told apart by id.
    let live: Listed, killedId: string, deleted: Listed, before: string;
    const mine = (images: Listed[]) =>
      images
        .map((i) => i.id)
        .filter((id) => [live.id, killedId, deleted.id].includes(id));
    beforeAll(async () => {
      live = await make('gone', { name: 'live' });
      killedId = randomUUID();
      const res = await request(t.http)
        .post('/v1/images')
        .set(A)
        .set(metaHeaders({ id: killedId, properties: { set: 'gone' } }))
        .set('Content-Type', 'text/plain')
        .send('wrong type');
      expect(res.status).toBe(400);
      const killed = await request(t.http)
        .head(`/v1/images/${killedId}`)
        .set(A);
      expect(killed.headers['x-image-meta-status']).toBe('killed');
      before = killed.headers['x-image-meta-updated_at'];
      await tick(5);
      deleted = await make('gone', { name: 'deleted' });
      expect(
        (await request(t.http).delete(`/v1/images/${deleted.id}`).set(A))
          .status,
      ).toBe(200);
    });

    it('lists neither killed nor deleted images', async () => {
      expect(mine(await list({}, A))).toEqual([live.id]);
      expect(mine(await list({ is_public: 'None' }, ADMIN))).toEqual([live.id]);
      expect(
        mine(await list({ status: 'killed', is_public: 'None' }, ADMIN)),
      ).toEqual([]);
      expect(
        mine(await list({ status: 'deleted', is_public: 'None' }, ADMIN)),
      ).toEqual([]);
    });

    it('shows deleted (and killed) images to an admin asking for changes-since', async () => {
      const changed = await list(
        { 'changes-since': before, is_public: 'None' },
        ADMIN,
      );
      expect(mine(changed)).toEqual([deleted.id]);
      const row = changed.find((i) => i.id === deleted.id)!;
      expect(row).toMatchObject({ status: 'deleted', deleted: true });
      expect(row.deleted_at).toMatch(/^\d{4}-/);
      const since2000 = await list(
        { 'changes-since': '2000-01-01T00:00:00Z', is_public: 'None' },
        ADMIN,
      );
      expect(mine(since2000).sort()).toEqual(
        [live.id, killedId, deleted.id].sort(),
      );
    });

    it('shows the owner its deleted images with changes-since, as Glance does', async () => {
      expect(mine(await list({ 'changes-since': before }, A))).toEqual([
        deleted.id,
      ]);
      expect(mine(await list({ 'changes-since': before }, B))).toEqual([]);
    });

    it('shows deleted images to an admin filtering deleted=true', async () => {
      expect(
        mine(await list({ deleted: 'true', is_public: 'None' }, ADMIN)),
      ).toEqual([deleted.id]);
      expect(
        mine(await list({ deleted: 'false', is_public: 'None' }, ADMIN)),
      ).toEqual([live.id]);
    });

    it('a deleted image is a valid marker only when deleted images are listed', async () => {
      expectError(
        await request(t.http)
          .get('/v1/images')
          .query({ marker: deleted.id, is_public: 'None' })
          .set(ADMIN),
        400,
        'Invalid marker',
      );
      const res = await request(t.http)
        .get('/v1/images')
        .query({
          marker: deleted.id,
          is_public: 'None',
          'changes-since': '2000-01-01T00:00:00',
        })
        .set(ADMIN);
      expect(res.status).toBe(200);
    });
  });

  describe('visibility', () => {
    let privA: Listed, privB: Listed, pubB: Listed, privAdmin: Listed;
    beforeAll(async () => {
      privA = await make('vis', { name: 'private-a' }, A);
      privB = await make('vis', { name: 'private-b' }, B);
      pubB = await make('vis', { name: 'public-b', is_public: true }, B);
      privAdmin = await make('vis', { name: 'private-admin' }, ADMIN);
    });
    const visible = (
      auth: Record<string, string>,
      query: Record<string, string> = {},
    ) => sorted({ 'property-set': 'vis', ...query }, auth);
    const expected = (...images: Listed[]) => images.map((i) => i.id).sort();

    it("a tenant sees public images and its own, never another tenant's private image", async () => {
      expect(await visible(A)).toEqual(expected(privA, pubB));
      expect(await visible(B)).toEqual(expected(privB, pubB));
      expect(await visible(as('tenant-c'))).toEqual(expected(pubB));
      const brief = await list({ 'property-set': 'vis' }, A, '/v1/images');
      expect(brief.map((i) => i.id).sort()).toEqual(expected(privA, pubB));
    });

    it('an admin with is_public=None sees every image', async () => {
      expect(await visible(ADMIN, { is_public: 'None' })).toEqual(
        expected(privA, privB, pubB, privAdmin),
      );
      expect(await visible(ADMIN, { is_public: 'none' })).toHaveLength(4);
    });

    it('an admin without is_public sees public images and its own', async () => {
      expect(await visible(ADMIN)).toEqual(expected(pubB, privAdmin));
      expect(await visible(ADMIN, { is_public: 'true' })).toEqual(
        expected(pubB, privAdmin),
      );
    });

    it('an admin with is_public=false sees every private image', async () => {
      expect(await visible(ADMIN, { is_public: 'false' })).toEqual(
        expected(privA, privB, privAdmin),
      );
    });
  });
});

describe('API_LIMIT_MAX', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ API_LIMIT_MAX: '3' });
  });
  afterAll(async () => t?.close());

  it('caps the page size whatever limit the client asks for', async () => {
    for (let i = 0; i < 5; i++)
      await createImage(t, { is_public: true, name: `capped-${i}` });
    const asked = await request(t.http).get('/v1/images').query({ limit: 100 });
    expect(asked.body.images).toHaveLength(3);
    const defaulted = await request(t.http).get('/v1/images');
    expect(defaulted.body.images).toHaveLength(3);
  });
});
