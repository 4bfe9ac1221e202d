import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectError, storeFilesOf } from '../support/image-assertions.js';
import { createImage, type ImageSpec } from '../support/image-builder.js';
import { ADMIN, as, createTestApp, type TestApp } from '../support/test-app.js';

const A = as('tenant-a');
const B = as('tenant-b');

describe('DELETE /v1/images/:id', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t?.close());

  const del = (id: string, auth: Record<string, string> = A) =>
    request(t.http).delete(`/v1/images/${id}`).set(auth);
  const head = (id: string, auth: Record<string, string> = ADMIN) =>
    request(t.http).head(`/v1/images/${id}`).set(auth);
  const make = (spec: ImageSpec = {}, auth: Record<string, string> = A) =>
    createImage(t, spec, auth);

  it('deletes the image and its data', async () => {
    const image = await make({
      data: Buffer.from('to be deleted'),
      properties: { p: '1' },
    });
    expect(storeFilesOf(t, image.id)).toEqual([image.id]);

    const res = await del(image.id);
    expect(res.status).toBe(200);
    expect(res.text ?? '').toBe('');

    const meta = await head(image.id);
    expect(meta.status).toBe(200);
    expect(meta.headers).toMatchObject({
      'x-image-meta-status': 'deleted',
      'x-image-meta-deleted': 'True',
      'x-image-meta-deleted_at': expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(storeFilesOf(t, image.id)).toEqual([]);
    expect((await head(image.id, A)).status).toBe(404);
    const listed = await request(t.http)
      .get('/v1/images/detail')
      .query({ is_public: 'None' })
      .set(ADMIN);
    expect(listed.body.images.map((i: { id: string }) => i.id)).not.toContain(
      image.id,
    );
  });

  it('answers 404 to a second delete', async () => {
    const image = await make({ data: Buffer.from('twice') });
    expect((await del(image.id)).status).toBe(200);
    expectError(await del(image.id), 404, image.id);
    expectError(
      await del(image.id, ADMIN),
      404,
      `Image ${image.id} not found.`,
    );
  });

  it('deletes a queued image that has no data', async () => {
    const image = await make();
    expect((await del(image.id)).status).toBe(200);
    expect((await head(image.id)).headers['x-image-meta-status']).toBe(
      'deleted',
    );
  });

  it('deletes a killed image', async () => {
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
      .send('x');
    expect((await head(id)).headers['x-image-meta-status']).toBe('killed');
    expect((await del(id)).status).toBe(200);
    expect((await head(id)).headers['x-image-meta-status']).toBe('deleted');
  });

  it('answers 404 for an unknown image', async () => {
    const id = randomUUID();
    expectError(await del(id), 404, id);
  });

  it('refuses to delete a protected image (403) until it is unprotected', async () => {
    const image = await make({
      protected: true,
      data: Buffer.from('precious'),
    });
    expectError(await del(image.id), 403, 'Image is protected');
    expectError(await del(image.id, ADMIN), 403, 'Image is protected');
    expect((await head(image.id)).headers['x-image-meta-status']).toBe(
      'active',
    );
    expect(storeFilesOf(t, image.id)).toEqual([image.id]);

    const unprotect = await request(t.http)
      .put(`/v1/images/${image.id}`)
      .set(A)
      .set('x-image-meta-protected', 'False');
    expect(unprotect.body.image.protected).toBe(false);
    expect((await del(image.id)).status).toBe(200);
    expect(storeFilesOf(t, image.id)).toEqual([]);
  });

  it('answers 404 to another tenant deleting a private image', async () => {
    const image = await make({ data: Buffer.from('mine') });
    expectError(await del(image.id, B), 404, image.id);
    expect((await head(image.id)).headers['x-image-meta-status']).toBe(
      'active',
    );
    expect(storeFilesOf(t, image.id)).toEqual([image.id]);
  });

  it('answers 403 to another tenant deleting a public image', async () => {
    const image = await make({ is_public: true, data: Buffer.from('shared') });
    const res = await del(image.id, B);
    expect(res.status).toBe(403);
    expect(res.text).toMatch(/own|Forbidden/i);
    expect((await head(image.id)).headers['x-image-meta-status']).toBe(
      'active',
    );
  });

  it("lets an admin delete any tenant's image", async () => {
    const image = await make({ data: Buffer.from('theirs') }, B);
    expect((await del(image.id, ADMIN)).status).toBe(200);
    expect((await head(image.id)).headers['x-image-meta-status']).toBe(
      'deleted',
    );
    expect(storeFilesOf(t, image.id)).toEqual([]);
  });

  it("keeps other images' data", async () => {
    const keep = await make({ data: Buffer.from('keep') });
    const drop = await make({ data: Buffer.from('drop') });
    expect((await del(drop.id)).status).toBe(200);
    expect(storeFilesOf(t, keep.id)).toEqual([keep.id]);
    const dl = await request(t.http).get(`/v1/images/${keep.id}`).set(A);
    expect(dl.status).toBe(200);
  });
});
