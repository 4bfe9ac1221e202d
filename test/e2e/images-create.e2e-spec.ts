import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  binaryParser,
  expectError,
  expectNoLocations,
  fromUtf8Header,
  md5,
  sha512,
  storeFiles,
  storeFilesOf,
  utf8Header,
} from '../support/image-assertions.js';
import {
  createImage,
  metaHeaders,
  type ImageSpec,
} from '../support/image-builder.js';
import { portOf, rawRequest } from '../support/raw-http.js';
import { as, createTestApp, type TestApp } from '../support/test-app.js';

describe('POST /v1/images', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t?.close());

  const post = (spec: ImageSpec = {}, auth: Record<string, string> = {}) =>
    request(t.http).post('/v1/images').set(auth).set(metaHeaders(spec));
  const upload = (
    spec: ImageSpec,
    data: Buffer,
    auth: Record<string, string> = {},
  ) =>
    post(spec, auth).set('Content-Type', 'application/octet-stream').send(data);
  const head = (id: string) => request(t.http).head(`/v1/images/${id}`);

  describe('reserving an image (no body)', () => {
    it("creates a queued image with Glance's fields and a Location header", async () => {
      const res = await post({
        name: 'reserved',
        disk_format: 'qcow2',
        container_format: 'ovf',
      }).set(as('tenant-a'));
      expect(res.status).toBe(201);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      const image = res.body.image;
      expect(image).toMatchObject({
        name: 'reserved',
        disk_format: 'qcow2',
        container_format: 'ovf',
        status: 'queued',
        size: 0,
        checksum: null,
        is_public: false,
        protected: false,
        min_ram: 0,
        min_disk: 0,
        owner: 'tenant-a',
        deleted: false,
        deleted_at: null,
        properties: {},
      });
      expect(image.id).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
      );
      expect(image.created_at).toMatch(
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/,
      );
      expect(res.headers.location).toMatch(
        new RegExp(`^http://127\\.0\\.0\\.1:\\d+/v1/images/${image.id}$`),
      );
      expect(res.headers.etag).toBeUndefined();
      expectNoLocations(res.body);
    });

    it('activates an image reserved with x-image-meta-size: 0', async () => {
      const image = await createImage(t, { size: 0 });
      expect(image).toMatchObject({ status: 'active', size: 0 });
      expect(storeFilesOf(t, image.id)).toEqual([]);
    });

    it('records the declared size of a queued image', async () => {
      const image = await createImage(t, { size: 1234 });
      expect(image).toMatchObject({ status: 'queued', size: 1234 });
    });

    it('ignores a client-sent status and server-owned timestamps', async () => {
      const res = await post({
        headers: {
          'x-image-meta-status': 'active',
          'x-image-meta-created_at': '2001-01-01T00:00:00',
          'x-image-meta-deleted': 'true',
        },
      });
      expect(res.status).toBe(201);
      expect(res.body.image).toMatchObject({
        status: 'queued',
        deleted: false,
      });
      expect(res.body.image.created_at.startsWith('2001')).toBe(false);
    });

    it("records the caller's tenant as owner; only an admin may choose another owner", async () => {
      const mine = await post({
        headers: { 'x-image-meta-owner': 'someone-else' },
      }).set(as('tenant-a'));
      expect(mine.body.image.owner).toBe('tenant-a');
      const admin = await post({
        headers: { 'x-image-meta-owner': 'tenant-z' },
      });
      expect(admin.body.image.owner).toBe('tenant-z');
      const noTenant = await post();
      expect(noTenant.body.image.owner).toBeNull();
    });
  });

  describe('uploading with the create', () => {
    it('stores the bytes and activates the image with md5 and sha512 digests', async () => {
      const data = randomBytes(64 * 1024 + 3);
      const res = await upload({ name: 'uploaded' }, data);
      expect(res.status).toBe(201);
      const image = res.body.image;
      expect(image).toMatchObject({
        status: 'active',
        size: data.length,
        checksum: md5(data),
        os_hash_algo: 'sha512',
        os_hash_value: sha512(data),
      });
      expect(res.headers.etag).toBe(md5(data));
      expect(res.headers.location).toMatch(
        new RegExp(`/v1/images/${image.id}$`),
      );
      expectNoLocations(res.body);
      expect(readFileSync(join(t.storeDir, image.id)).equals(data)).toBe(true);

      const dl = await request(t.http)
        .get(`/v1/images/${image.id}`)
        .buffer(true)
        .parse(binaryParser);
      expect(dl.status).toBe(200);
      expect((dl.body as Buffer).equals(data)).toBe(true);
    });

    it('accepts a matching x-image-meta-checksum and size', async () => {
      const data = Buffer.from('exactly these bytes');
      const res = await upload(
        { size: data.length, headers: { 'x-image-meta-checksum': md5(data) } },
        data,
      );
      expect(res.status).toBe(201);
      expect(res.body.image).toMatchObject({
        status: 'active',
        checksum: md5(data),
        size: data.length,
      });
    });

    it('kills the image and removes its data on a checksum mismatch', async () => {
      const id = randomUUID();
      const data = Buffer.from('some image bytes');
      const res = await upload(
        { id, headers: { 'x-image-meta-checksum': md5(Buffer.from('other')) } },
        data,
      );
      expectError(
        res,
        400,
        `Supplied checksum (${md5(Buffer.from('other'))}) and checksum generated from uploaded image (${md5(data)}) did not match`,
      );
      expect((await head(id)).headers['x-image-meta-status']).toBe('killed');
      expect(storeFilesOf(t, id)).toEqual([]);
    });

    it.each([
      ['smaller', 5],
      ['larger', 500],
    ])(
      'kills the image and removes its data when the declared size is %s than the body',
      async (_, size) => {
        const id = randomUUID();
        const data = Buffer.alloc(50, 3);
        const res = await upload({ id, size }, data);
        expectError(
          res,
          400,
          `Supplied size (${size}) and size generated from uploaded image (50) did not match`,
        );
        expect((await head(id)).headers['x-image-meta-status']).toBe('killed');
        expect(storeFilesOf(t, id)).toEqual([]);
      },
    );

    it('kills the image when the body is not application/octet-stream', async () => {
      const id = randomUUID();
      const res = await post({ id })
        .set('Content-Type', 'text/plain')
        .send('not an image');
      expectError(res, 400, 'Content-Type must be application/octet-stream');
      expect((await head(id)).headers['x-image-meta-status']).toBe('killed');
      expect(storeFilesOf(t, id)).toEqual([]);
    });

    it('kills the image when the body has no Content-Type', async () => {
      const id = randomUUID();
      const res = await rawRequest(await portOf(t), {
        method: 'POST',
        path: '/v1/images',
        headers: { ...metaHeaders({ id }), 'content-length': '19' },
        body: Buffer.from('chunk00000remainder'),
      });
      expect(res.status).toBe(400);
      expect(res.body.toString()).toContain(
        'Content-Type must be application/octet-stream',
      );
      expect((await head(id)).headers['x-image-meta-status']).toBe('killed');
    });

    it('accepts application/octet-stream with parameters', async () => {
      const res = await post()
        .set('Content-Type', 'application/octet-stream; charset=binary')
        .send(Buffer.from('x'));
      expect(res.status).toBe(201);
      expect(res.body.image.status).toBe('active');
    });

    it('refuses data without a disk format and leaves the image queued', async () => {
      const id = randomUUID();
      const res = await request(t.http)
        .post('/v1/images')
        .set({
          'x-image-meta-id': id,
          'x-image-meta-name': 'no-format',
          'x-image-meta-container_format': 'bare',
        })
        .set('Content-Type', 'application/octet-stream')
        .send(Buffer.from('data'));
      expectError(res, 400, 'Invalid disk format');
      expect((await head(id)).headers['x-image-meta-status']).toBe('queued');
      expect(storeFilesOf(t, id)).toEqual([]);
    });

    it('refuses data without a container format and leaves the image queued', async () => {
      const id = randomUUID();
      const res = await request(t.http)
        .post('/v1/images')
        .set({ 'x-image-meta-id': id, 'x-image-meta-disk_format': 'raw' })
        .set('Content-Type', 'application/octet-stream')
        .send(Buffer.from('data'));
      expectError(res, 400, 'Invalid container format');
      expect((await head(id)).headers['x-image-meta-status']).toBe('queued');
    });

    it('refuses an unknown store', async () => {
      const res = await upload(
        { headers: { 'x-image-meta-store': 'floppy' } },
        Buffer.from('x'),
      );
      expectError(res, 400, 'Required store floppy is invalid');
    });
  });

  describe('client-chosen ids', () => {
    it('keeps the id and refuses it a second time with 409', async () => {
      const id = randomUUID();
      const first = await post({ id });
      expect(first.status).toBe(201);
      expect(first.body.image.id).toBe(id);
      expectError(
        await post({ id }),
        409,
        `An image with identifier ${id} already exists`,
      );
    });

    it('refuses the id of a deleted image', async () => {
      const id = randomUUID();
      await post({ id });
      expect((await request(t.http).delete(`/v1/images/${id}`)).status).toBe(
        200,
      );
      expectError(await post({ id }), 409, id);
    });

    it.each([
      'not-a-uuid',
      '12345',
      'AAAAAAAA-AAAA-AAAA-AAAA-AAAAAAAAAAAA',
      `${randomUUID()}0`,
      '../../etc/passwd',
    ])('refuses the invalid id %s', async (id) => {
      expectError(await post({ id }), 400, 'Invalid image id format');
    });

    it('treats an empty id header as no id', async () => {
      const res = await post({ headers: { 'x-image-meta-id': '' } });
      expect(res.status).toBe(201);
      expect(res.body.image.id).toMatch(/^[0-9a-f-]{36}$/);
    });
  });

  describe('header validation', () => {
    it('refuses an unknown x-image-meta header', async () => {
      expectError(
        await post({ headers: { 'x-image-meta-foo': 'bar' } }),
        400,
        'Bad header: x-image-meta-foo',
      );
    });

    it.each(['size', 'min_ram', 'min_disk'])(
      'refuses a non-integer or negative %s',
      async (key) => {
        expectError(
          await post({ headers: { [`x-image-meta-${key}`]: 'abc' } }),
          400,
          `Cannot convert image ${key} 'abc' to an integer.`,
        );
        expectError(
          await post({ headers: { [`x-image-meta-${key}`]: '-1' } }),
          400,
          `Image ${key} must be >= 0 ('-1' specified).`,
        );
        expectError(
          await post({ headers: { [`x-image-meta-${key}`]: '1.5' } }),
          400,
          'to an integer',
        );
      },
    );

    it('stores min_ram and min_disk', async () => {
      const image = await createImage(t, {
        headers: {
          'x-image-meta-min_ram': '512',
          'x-image-meta-min_disk': '20',
        },
      });
      expect(image).toMatchObject({ min_ram: 512, min_disk: 20 });
    });

    it.each([
      ['yes', true],
      ['1', true],
      ['true', true],
      ['True', true],
      ['on', true],
      ['garbage', false],
      ['no', false],
      ['0', false],
      ['False', false],
    ])('parses x-image-meta-is_public: %s as %s', async (value, expected) => {
      const image = await createImage(t, {
        headers: { 'x-image-meta-is_public': value },
      });
      expect(image.is_public).toBe(expected);
    });

    it('parses x-image-meta-protected the same way', async () => {
      expect(
        (await createImage(t, { headers: { 'x-image-meta-protected': 'yes' } }))
          .protected,
      ).toBe(true);
      expect(
        (
          await createImage(t, {
            headers: { 'x-image-meta-protected': 'maybe' },
          })
        ).protected,
      ).toBe(false);
    });

    it('refuses unknown disk and container formats', async () => {
      expectError(
        await post({ disk_format: 'floppy' }),
        400,
        "Invalid disk format 'floppy' for image.",
      );
      expectError(
        await post({ container_format: 'zip' }),
        400,
        "Invalid container format 'zip' for image.",
      );
    });

    it.each(['aki', 'ari', 'ami'])(
      'fills in the missing format of a %s image',
      async (f) => {
        const byDisk = await request(t.http)
          .post('/v1/images')
          .set({ 'x-image-meta-disk_format': f });
        expect(byDisk.status).toBe(201);
        expect(byDisk.body.image).toMatchObject({
          disk_format: f,
          container_format: f,
        });
        const byContainer = await request(t.http)
          .post('/v1/images')
          .set({ 'x-image-meta-container_format': f });
        expect(byContainer.body.image).toMatchObject({
          disk_format: f,
          container_format: f,
        });
      },
    );

    it('refuses mismatched amazon formats', async () => {
      expectError(
        await post({ disk_format: 'aki', container_format: 'ari' }),
        400,
        'Invalid mix of disk and container formats',
      );
      expectError(
        await post({ disk_format: 'raw', container_format: 'ami' }),
        400,
        "'aki', 'ari', or 'ami'",
      );
    });

    it('accepts a 255-character name and refuses a longer one', async () => {
      expect(
        (await createImage(t, { name: 'x'.repeat(255) })).name,
      ).toHaveLength(255);
      expectError(
        await post({ name: 'x'.repeat(256) }),
        400,
        'Image name too long: 256',
      );
    });

    it('refuses a reserve whose checksum is longer than 32 characters, storing nothing', async () => {
      const id = randomUUID();
      const sha1 = 'da39a3ee5e6b4b0d3255bfef95601890afd80709';
      expectError(
        await post({ id, name: 'long-sum', headers: { 'x-image-meta-checksum': sha1 } }),
        400,
        'Invalid checksum: at most 32 characters (an MD5 hex digest), got 40',
      );
      expect((await head(id)).status).toBe(404);
    });

    it('turns dashes in property names into underscores', async () => {
      const image = await createImage(t, {
        properties: { 'os-distro': 'ubuntu', kernel_id: 'k1', 'a-b-c': '' },
      });
      expect(image.properties).toEqual({
        os_distro: 'ubuntu',
        kernel_id: 'k1',
        a_b_c: null,
      });
      const res = await head(image.id);
      expect(res.headers['x-image-meta-property-os_distro']).toBe('ubuntu');
      expect(res.headers['x-image-meta-property-kernel_id']).toBe('k1');
    });
  });

  describe('UTF-8 metadata', () => {
    it('round-trips a UTF-8 name and property through JSON and HEAD headers', async () => {
      const name = 'Ubuntu 日本語 — ünïcode ✓';
      const description = 'Описание образа €';
      const res = await post({
        headers: {
          'x-image-meta-name': utf8Header(name),
          'x-image-meta-property-description': utf8Header(description),
        },
      });
      expect(res.status).toBe(201);
      expect(res.body.image.name).toBe(name);
      expect(res.body.image.properties.description).toBe(description);

      const meta = await head(res.body.image.id);
      expect(fromUtf8Header(meta.headers['x-image-meta-name'])).toBe(name);
      expect(
        fromUtf8Header(meta.headers['x-image-meta-property-description']),
      ).toBe(description);

      const listed = await request(t.http)
        .get('/v1/images/detail')
        .query({ name, is_public: 'None' });
      expect(listed.body.images.map((i: { id: string }) => i.id)).toEqual([
        res.body.image.id,
      ]);
    });
  });

  describe('location redaction', () => {
    it('never reveals where the bytes are stored', async () => {
      const data = Buffer.from('secret location');
      const created = await upload({ is_public: true, name: 'redacted' }, data);
      expectNoLocations(created.body);
      expect(created.headers['x-image-meta-location']).toBeUndefined();
      const id = created.body.image.id;
      for (const path of [
        '/v1/images',
        '/v1/images/detail',
        '/v1/images/detail?is_public=None',
      ]) {
        const res = await request(t.http).get(path);
        expect(res.status).toBe(200);
        expectNoLocations(res.body);
        expectNoLocations(res.text);
      }
      const meta = await head(id);
      expect(meta.headers['x-image-meta-location']).toBeUndefined();
      expect(JSON.stringify(meta.headers)).not.toContain('file://');
      const updated = await request(t.http)
        .put(`/v1/images/${id}`)
        .set('x-image-meta-name', 'renamed');
      expectNoLocations(updated.body);
      expect(storeFiles(t)).toContain(id);
    });
  });
});
