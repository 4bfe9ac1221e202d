import { EventEmitter2 } from '@nestjs/event-emitter';
import { PassThrough } from 'node:stream';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageNotification } from '../../src/notifications/image-notification.js';
import { ImageRegistry } from '../../src/registry/image.registry.js';
import {
  RegistryError,
  RegistryErrorCode,
} from '../../src/registry/registry.error.js';
import {
  md5,
  storeFiles,
  storeFilesOf,
  waitFor,
} from '../support/image-assertions.js';
import { createImage, metaHeaders } from '../support/image-builder.js';
import {
  portOf,
  rawRequest,
  sendAllThenRead,
  type RawResponse,
} from '../support/raw-http.js';
import { TEST_DATABASE } from '../support/test-database.js';
import { as, createTestApp, type TestApp } from '../support/test-app.js';

/** Counts of each value, e.g. HTTP statuses: { 200: 1, 404: 9 }. */
function tally(values: (string | number)[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}

/** Records the image events the app emits, by event type. */
function recordEvents(t: TestApp): ImageNotification[] {
  const seen: ImageNotification[] = [];
  t.app
    .get(EventEmitter2)
    .on('image.*', (event: ImageNotification) => seen.push(event));
  return seen;
}

describe(`racing state transitions (${TEST_DATABASE})`, () => {
  let t: TestApp;
  let port: number;
  let events: ImageNotification[];
  beforeAll(async () => {
    t = await createTestApp();
    port = await portOf(t);
    events = recordEvents(t);
  });
  afterAll(async () => t?.close());

  const eventsOf = (id: string, type: string) =>
    events.filter(
      (e) => e.eventType === type && (e.payload as { id?: string })?.id === id,
    );

  it('10 overlapping PUT uploads to one queued image: one 200, nine 409, one file', async () => {
    const image = await createImage(t, { name: 'raced-upload' });
    const racers = 10;
    const data = Array.from({ length: racers }, (_, n) =>
      Buffer.alloc(256 * 1024, 0x30 + n),
    );
    const bodies = data.map(() => new PassThrough());
    const answered: (RawResponse | undefined)[] = data.map(() => undefined);
    const answers = bodies.map((body, n) =>
      rawRequest(port, {
        method: 'PUT',
        path: `/v1/images/${image.id}`,
        headers: { 'content-type': 'application/octet-stream' },
        body,
      }).then((res) => (answered[n] = res)),
    );
    // Every request is in flight with part of its bytes sent; none can finish yet.
    bodies.forEach((body, n) => body.write(data[n].subarray(0, 64 * 1024)));

    await waitFor(
      () => answered.filter(Boolean).length >= racers - 1,
      'nine uploads to be refused',
      15_000,
    );
    const losers = answered.flatMap((res, n) => (res ? [n] : []));
    expect(losers).toHaveLength(racers - 1);
    for (const n of losers) {
      expect(answered[n]!.status).toBe(409);
      expect(answered[n]!.body.toString()).toMatch(
        /Cannot upload to an unqueued image|Image operation conflicts/,
      );
    }
    const w = answered.findIndex((res) => res === undefined);
    for (const n of losers) bodies[n].end();
    bodies[w].end(data[w].subarray(64 * 1024));
    await Promise.all(answers);

    const won = answered[w]!;
    expect(won.status).toBe(200);
    expect(JSON.parse(won.body.toString()).image).toMatchObject({
      status: 'active',
      size: data[w].length,
      checksum: md5(data[w]),
    });
    expect(storeFilesOf(t, image.id)).toEqual([image.id]);
    expect(storeFiles(t).filter((f) => f.endsWith('.part'))).toEqual([]);
    const dl = await rawRequest(port, {
      method: 'GET',
      path: `/v1/images/${image.id}`,
    });
    expect(dl.status).toBe(200);
    expect(md5(dl.body)).toBe(md5(data[w]));
    expect(eventsOf(image.id, 'image.prepare')).toHaveLength(1);
    expect(eventsOf(image.id, 'image.activate')).toHaveLength(1);
  });

  it('10 concurrent uploads of different images all become active', async () => {
    const images = Array.from({ length: 10 }, (_, n) => ({
      data: Buffer.alloc(64 * 1024 + n, 0x61 + n),
      id: '',
    }));
    const answers = await Promise.all(
      images.map((img, n) =>
        request(t.http)
          .post('/v1/images')
          .set(metaHeaders({ name: `parallel-${n}` }))
          .set('Content-Type', 'application/octet-stream')
          .send(img.data),
      ),
    );
    answers.forEach((res, n) => {
      expect({ status: res.status, text: res.text }).toMatchObject({
        status: 201,
      });
      expect(res.body.image).toMatchObject({
        status: 'active',
        checksum: md5(images[n].data),
      });
      images[n].id = res.body.image.id;
    });
    for (const img of images) expect(storeFilesOf(t, img.id)).toEqual([img.id]);
  });

  it('20 concurrent queued→saving updates in the registry: one wins, 19 Conflict', async () => {
    const registry = t.app.get(ImageRegistry);
    const image = await registry.create({
      name: 'raced-registry',
      disk_format: 'raw',
      container_format: 'bare',
      status: 'queued',
      properties: {},
    });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, n) =>
        registry.update(image.id, {
          fields: { status: 'saving' },
          fromState: 'queued',
          uploadNode: `racer-${n}`,
        }),
      ),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(won[0].value.status).toBe('saving');
    expect(lost).toHaveLength(19);
    for (const r of lost) {
      expect(r.reason).toBeInstanceOf(RegistryError);
      expect((r.reason as RegistryError).code).toBe(RegistryErrorCode.Conflict);
    }
    expect((await registry.get(image.id))?.status).toBe('saving');

    // Once saving, a second from_state=queued attempt still cannot pass.
    await expect(
      registry.update(image.id, {
        fields: { status: 'saving' },
        fromState: 'queued',
      }),
    ).rejects.toMatchObject({ code: RegistryErrorCode.Conflict });
  });

  it('10 concurrent DELETEs of one image: one 200, nine 404, one image.delete', async () => {
    const data = Buffer.alloc(100 * 1024, 0x5a);
    const image = await createImage(t, { name: 'raced-delete', data });
    expect(storeFilesOf(t, image.id)).toEqual([image.id]);

    const responses = await Promise.all(
      Array.from({ length: 10 }, () =>
        request(t.http).delete(`/v1/images/${image.id}`),
      ),
    );
    expect(tally(responses.map((r) => r.status))).toEqual({ 200: 1, 404: 9 });
    expect(eventsOf(image.id, 'image.delete')).toHaveLength(1);
    await waitFor(
      () => storeFilesOf(t, image.id).length === 0,
      'the data to be removed',
    );
    const head = await request(t.http)
      .head(`/v1/images/${image.id}`)
      .set(as('someone'));
    expect(head.status).toBe(404);
    const deleted = await t.app.get(ImageRegistry).get(image.id, true);
    expect(deleted).toMatchObject({ status: 'deleted', deleted: true });
  });

  it('an upload and deletes racing: the image ends deleted with no data left', async () => {
    const image = await createImage(t, { name: 'upload-vs-delete' });
    const registry = t.app.get(ImageRegistry);
    let deletes: { status: number }[] = [];
    // Like python-requests: the client sends everything, then reads the answer.
    async function* body() {
      yield Buffer.alloc(64 * 1024, 1);
      await waitFor(
        async () => (await registry.get(image.id))?.status === 'saving',
        'the upload to start',
      );
      deletes = await Promise.all(
        Array.from({ length: 5 }, () =>
          request(t.http).delete(`/v1/images/${image.id}`),
        ),
      );
      for (let i = 0; i < 16; i++) yield Buffer.alloc(1024 * 1024, 2);
    }
    const answer = await sendAllThenRead(
      port,
      {
        method: 'PUT',
        path: `/v1/images/${image.id}`,
        headers: { 'content-type': 'application/octet-stream' },
      },
      body(),
    );
    expect(tally(deletes.map((r) => r.status))).toEqual({ 200: 1, 404: 4 });
    // The refused body was read to its end, so the client gets the answer.
    expect(answer.status).toBe(412);
    expect(answer.text).toContain('may have been deleted during the upload');
    await waitFor(
      () => storeFilesOf(t, image.id).length === 0,
      'the partial data to be removed',
    );
    expect((await registry.get(image.id, true))?.status).toBe('deleted');
  });
});
