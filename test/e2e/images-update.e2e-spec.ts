import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectError,
  expectNoLocations,
  md5,
  sha512,
  storeFilesOf,
  tick,
} from '../support/image-assertions.js';
import { createImage, type ImageSpec } from '../support/image-builder.js';
import { ADMIN, as, createTestApp, type TestApp } from '../support/test-app.js';

const A = as('tenant-a');
const B = as('tenant-b');

describe('PUT /v1/images/:id', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t?.close());

  const put = (
    id: string,
    headers: Record<string, string>,
    auth: Record<string, string> = A,
  ) => request(t.http).put(`/v1/images/${id}`).set(auth).set(headers);
  const putData = (
    id: string,
    data: Buffer,
    headers: Record<string, string> = {},
    auth = A,
  ) =>
    put(
      id,
      { 'Content-Type': 'application/octet-stream', ...headers },
      auth,
    ).send(data);
  const head = (id: string, auth: Record<string, string> = ADMIN) =>
    request(t.http).head(`/v1/images/${id}`).set(auth);
  const make = (spec: ImageSpec = {}, auth: Record<string, string> = A) =>
    createImage(t, spec, auth);

  describe('metadata', () => {
    it('changes core fields and answers the updated image', async () => {
      const image = await make({ name: 'before', data: Buffer.from('bytes') });
      await tick();
      const res = await put(image.id, {
        'x-image-meta-name': 'after',
        'x-image-meta-min_ram': '1024',
        'x-image-meta-min_disk': '3',
        'x-image-meta-is_public': 'true',
        'x-image-meta-protected': 'true',
        'x-image-meta-disk_format': 'qcow2',
      });
      expect(res.status).toBe(200);
      expect(res.body.image).toMatchObject({
        id: image.id,
        name: 'after',
        min_ram: 1024,
        min_disk: 3,
        is_public: true,
        protected: true,
        disk_format: 'qcow2',
        status: 'active',
        checksum: md5(Buffer.from('bytes')),
      });
      expect(res.body.image.updated_at > image.updated_at).toBe(true);
      expect(res.body.image.created_at).toBe(image.created_at);
      expect(res.headers.location).toMatch(
        new RegExp(`/v1/images/${image.id}$`),
      );
      expect(res.headers.etag).toBe(md5(Buffer.from('bytes')));
      expectNoLocations(res.body);
      const meta = await head(image.id, A);
      expect(meta.headers).toMatchObject({
        'x-image-meta-name': 'after',
        'x-image-meta-min_ram': '1024',
        'x-image-meta-is_public': 'True',
        'x-image-meta-protected': 'True',
      });
    });

    it('validates the headers as a create does', async () => {
      const image = await make();
      expectError(
        await put(image.id, { 'x-image-meta-foo': 'x' }),
        400,
        'Bad header: x-image-meta-foo',
      );
      expectError(
        await put(image.id, { 'x-image-meta-min_ram': '-4' }),
        400,
        'must be >= 0',
      );
      expectError(
        await put(image.id, { 'x-image-meta-disk_format': 'floppy' }),
        400,
        'Invalid disk format',
      );
      expectError(
        await put(image.id, { 'x-image-meta-name': 'n'.repeat(256) }),
        400,
        'Image name too long',
      );
      expectError(
        await put(image.id, {
          'x-image-meta-disk_format': 'aki',
          'x-image-meta-container_format': 'ami',
        }),
        400,
        'Invalid mix of disk and container formats',
      );
    });

    it('ignores x-image-meta-status: an active image never goes back to queued', async () => {
      const image = await make({ data: Buffer.from('active') });
      for (const status of ['queued', 'killed', 'deleted', 'saving']) {
        const res = await put(image.id, { 'x-image-meta-status': status });
        expect(res.status).toBe(200);
        expect(res.body.image.status).toBe('active');
      }
      expect((await head(image.id)).headers['x-image-meta-status']).toBe(
        'active',
      );
      const reserved = await make();
      expect(
        (await put(reserved.id, { 'x-image-meta-status': 'active' })).body.image
          .status,
      ).toBe('queued');
    });

    it('lets only an admin change the owner', async () => {
      const image = await make();
      expect(
        (await put(image.id, { 'x-image-meta-owner': 'tenant-b' })).body.image
          .owner,
      ).toBe('tenant-a');
      expect(
        (await put(image.id, { 'x-image-meta-owner': 'tenant-b' }, ADMIN)).body
          .image.owner,
      ).toBe('tenant-b');
    });

    it('answers 404 for an unknown image', async () => {
      const id = randomUUID();
      expectError(await put(id, { 'x-image-meta-name': 'x' }), 404, id);
    });
  });

  describe('properties', () => {
    it('replaces all properties by default (purge-props)', async () => {
      const image = await make({ properties: { a: '1', b: '2' } });
      const res = await put(image.id, { 'x-image-meta-property-c': '3' });
      expect(res.body.image.properties).toEqual({ c: '3' });
      const none = await put(image.id, { 'x-image-meta-name': 'no props' });
      expect(none.body.image.properties).toEqual({});
    });

    it('keeps unnamed properties with x-glance-registry-purge-props: false', async () => {
      const image = await make({ properties: { a: '1', b: '2' } });
      const res = await put(image.id, {
        'x-glance-registry-purge-props': 'false',
        'x-image-meta-property-b': 'two',
        'x-image-meta-property-new-key': '3',
      });
      expect(res.body.image.properties).toEqual({
        a: '1',
        b: 'two',
        new_key: '3',
      });
      const meta = await head(image.id);
      expect(meta.headers['x-image-meta-property-a']).toBe('1');
      expect(meta.headers['x-image-meta-property-b']).toBe('two');
      expect(meta.headers['x-image-meta-property-new_key']).toBe('3');
    });

    it('purges with any true spelling of the header', async () => {
      const image = await make({ properties: { a: '1' } });
      const res = await put(image.id, {
        'x-glance-registry-purge-props': 'True',
        'x-image-meta-property-b': '2',
      });
      expect(res.body.image.properties).toEqual({ b: '2' });
    });
  });

  describe('uploading data', () => {
    it('uploads to a queued image and activates it, keeping its properties', async () => {
      const image = await make({
        name: 'to-fill',
        properties: { kept: 'yes' },
      });
      const data = randomBytes(4096);
      const res = await putData(image.id, data, {
        'x-image-meta-property-added': 'too',
      });
      expect(res.status).toBe(200);
      expect(res.body.image).toMatchObject({
        id: image.id,
        status: 'active',
        size: data.length,
        checksum: md5(data),
        os_hash_algo: 'sha512',
        os_hash_value: sha512(data),
        properties: { kept: 'yes', added: 'too' },
      });
      expect(res.headers.etag).toBe(md5(data));
      expectNoLocations(res.body);
      expect(readFileSync(join(t.storeDir, image.id)).equals(data)).toBe(true);
    });

    it('applies metadata sent with the data', async () => {
      const image = await make({ headers: { 'x-image-meta-name': 'old' } });
      const res = await putData(image.id, Buffer.from('abc'), {
        'x-image-meta-name': 'new',
        'x-image-meta-min_disk': '2',
      });
      expect(res.body.image).toMatchObject({
        name: 'new',
        min_disk: 2,
        status: 'active',
      });
    });

    it('answers 409 to an upload to an active image and keeps its data', async () => {
      const first = Buffer.from('first upload');
      const image = await make({ data: first });
      expectError(
        await putData(image.id, Buffer.from('second')),
        409,
        'Cannot upload to an unqueued image',
      );
      const meta = await head(image.id);
      expect(meta.headers['x-image-meta-checksum']).toBe(md5(first));
      expect(readFileSync(join(t.storeDir, image.id)).equals(first)).toBe(true);
    });

    it('answers 409 to an upload to a killed image', async () => {
      const id = randomUUID();
      await request(t.http)
        .post('/v1/images')
        .set(A)
        .set({
          'x-image-meta-id': id,
          'x-image-meta-disk_format': 'raw',
          'x-image-meta-container_format': 'bare',
        })
        .set('Content-Type', 'text/plain')
        .send('wrong type');
      expect((await head(id)).headers['x-image-meta-status']).toBe('killed');
      expectError(
        await putData(id, Buffer.from('retry')),
        409,
        'Cannot upload to an unqueued image',
      );
    });

    it('kills a queued image when the data is not application/octet-stream', async () => {
      const image = await make();
      const res = await put(image.id, {
        'Content-Type': 'application/json',
      }).send('{"a":1}');
      expectError(res, 400, 'Content-Type must be application/octet-stream');
      expect((await head(image.id)).headers['x-image-meta-status']).toBe(
        'killed',
      );
      expect(storeFilesOf(t, image.id)).toEqual([]);
    });

    it('checks the uploaded bytes against a size declared at reserve time', async () => {
      const image = await make({ size: 10 });
      expect(image.status).toBe('queued');
      expectError(
        await putData(image.id, Buffer.from('not ten')),
        400,
        'Supplied size (10)',
      );
      expect((await head(image.id)).headers['x-image-meta-status']).toBe(
        'killed',
      );
      expect(storeFilesOf(t, image.id)).toEqual([]);
    });

    it('refuses data for an image without formats and leaves it queued', async () => {
      const res = await request(t.http)
        .post('/v1/images')
        .set(A)
        .set('x-image-meta-name', 'formatless');
      const id = res.body.image.id;
      expectError(
        await putData(id, Buffer.from('x')),
        400,
        'Invalid disk format',
      );
      expect((await head(id)).headers['x-image-meta-status']).toBe('queued');
      const fixed = await putData(id, Buffer.from('x'), {
        'x-image-meta-disk_format': 'raw',
        'x-image-meta-container_format': 'bare',
      });
      expect(fixed.status).toBe(200);
      expect(fixed.body.image.status).toBe('active');
    });
  });

  describe('size and checksum of an active image', () => {
    const data = Buffer.from('immutable data');
    it('are forbidden to change for a non-admin (403)', async () => {
      const image = await make({ data });
      expectError(
        await put(image.id, { 'x-image-meta-size': '99' }),
        403,
        "Forbidden to modify 'size' of active image.",
      );
      expectError(
        await put(image.id, { 'x-image-meta-checksum': md5(Buffer.from('x')) }),
        403,
        "Forbidden to modify 'checksum' of active image.",
      );
      const meta = await head(image.id);
      expect(meta.headers['x-image-meta-size']).toBe(String(data.length));
      expect(meta.headers['x-image-meta-checksum']).toBe(md5(data));
    });

    it('may be re-sent unchanged by a non-admin', async () => {
      const image = await make({ data });
      const res = await put(image.id, {
        'x-image-meta-size': String(data.length),
        'x-image-meta-checksum': md5(data),
        'x-image-meta-name': 'same values',
      });
      expect(res.status).toBe(200);
      expect(res.body.image).toMatchObject({
        name: 'same values',
        size: data.length,
        checksum: md5(data),
      });
    });

    it('may be changed by an admin', async () => {
      const image = await make({ data });
      const res = await put(
        image.id,
        { 'x-image-meta-size': '99', 'x-image-meta-checksum': 'abc' },
        ADMIN,
      );
      expect(res.status).toBe(200);
      expect(res.body.image).toMatchObject({ size: 99, checksum: 'abc' });
    });

    it('may be set on a queued image by its owner', async () => {
      const image = await make();
      const res = await put(image.id, { 'x-image-meta-size': '5' });
      expect(res.status).toBe(200);
      expect(res.body.image.size).toBe(5);
    });
  });

  describe('who may update', () => {
    it('forbids updates of a deleted image, even for an admin (403)', async () => {
      const image = await make({ data: Buffer.from('gone') });
      expect(
        (await request(t.http).delete(`/v1/images/${image.id}`).set(A)).status,
      ).toBe(200);
      expectError(
        await put(image.id, { 'x-image-meta-name': 'zombie' }, ADMIN),
        403,
        'Forbidden to update deleted image.',
      );
      expect(
        (await put(image.id, { 'x-image-meta-name': 'zombie' }, A)).status,
      ).toBe(404);
      expect((await head(image.id)).headers['x-image-meta-name']).toBe(
        'test-image',
      );
    });

    it('answers 404 to another tenant updating a private image', async () => {
      const image = await make({ name: 'private' });
      expectError(
        await put(image.id, { 'x-image-meta-name': 'hijacked' }, B),
        404,
        image.id,
      );
      expect((await head(image.id)).headers['x-image-meta-name']).toBe(
        'private',
      );
    });

    it('answers 403 to another tenant updating a public image', async () => {
      const image = await make({ name: 'public', is_public: true });
      const res = await put(image.id, { 'x-image-meta-name': 'hijacked' }, B);
      expect(res.status).toBe(403);
      expect(res.text).toMatch(/own|Forbidden/i);
      expect((await head(image.id)).headers['x-image-meta-name']).toBe(
        'public',
      );
      expect((await putData(image.id, Buffer.from('x'), {}, B)).status).toBe(
        403,
      );
    });

    it("lets an admin update any tenant's image", async () => {
      const image = await make({ name: 'theirs' }, B);
      const res = await put(
        image.id,
        { 'x-image-meta-name': 'admin-edited' },
        ADMIN,
      );
      expect(res.status).toBe(200);
      expect(res.body.image).toMatchObject({
        name: 'admin-edited',
        owner: 'tenant-b',
      });
    });
  });
});
