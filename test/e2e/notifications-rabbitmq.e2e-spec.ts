import { connect } from 'amqplib';
import type { Channel, ChannelModel } from 'amqplib';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OsloNotification } from '../../src/notifications/oslo-envelope.js';
import {
  binaryParser,
  expectNoLocations,
  md5,
  waitFor,
} from '../support/image-assertions.js';
import { metaHeaders } from '../support/image-builder.js';
import { as, createTestApp, type TestApp } from '../support/test-app.js';

// The machine's RabbitMQ on loopback (guest/guest), as in test/notifications.
const BROKER = 'amqp://guest:guest@127.0.0.1:5672';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Received {
  routingKey: string;
  contentType: string | undefined;
  raw: string;
  envelope: Record<string, unknown>;
  message: OsloNotification;
}

/** Image id a notification is about (image.send names it image_id). */
function imageIdOf(m: OsloNotification): string | undefined {
  const p = m.payload as { id?: string; image_id?: string } | null;
  return p && typeof p === 'object' ? (p.id ?? p.image_id) : undefined;
}

describe('notifications to RabbitMQ (NOTIFICATION_DRIVER=messaging)', () => {
  const exchange = `glance-e2e-${randomBytes(6).toString('hex')}`;
  const received: Received[] = [];
  let broker: ChannelModel;
  let channel: Channel;
  let t: TestApp;

  beforeAll(async () => {
    broker = await connect(BROKER);
    channel = await broker.createChannel();
    // Same flags as the service's declaration, so either may create it first.
    await channel.assertExchange(exchange, 'topic', {
      durable: false,
      autoDelete: false,
    });
    const { queue } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(queue, exchange, 'notifications.*');
    await channel.consume(
      queue,
      (msg) => {
        if (!msg) return;
        const raw = msg.content.toString('utf8');
        const envelope = JSON.parse(raw) as Record<string, unknown>;
        received.push({
          routingKey: msg.fields.routingKey,
          contentType: msg.properties.contentType,
          raw,
          envelope,
          message: JSON.parse(String(envelope['oslo.message'])),
        });
      },
      { noAck: true },
    );
    t = await createTestApp({
      NOTIFICATION_DRIVER: 'messaging',
      TRANSPORT_URL: 'rabbit://guest:guest@127.0.0.1:5672/',
      NOTIFICATION_EXCHANGE: exchange,
    });
  });

  afterAll(async () => {
    await t?.close();
    if (channel) {
      await channel.deleteExchange(exchange);
      await broker.close();
    }
  });

  it('publishes the life of an image, in order, as oslo 2.0 messages without locations', async () => {
    const data = randomBytes(150 * 1024);
    const created = await request(t.http)
      .post('/v1/images')
      .set(as('tenant-n'))
      .set(metaHeaders({ name: 'notified', properties: { distro: 'x' } }));
    expect(created.status).toBe(201);
    const id: string = created.body.image.id;

    const uploaded = await request(t.http)
      .put(`/v1/images/${id}`)
      .set(as('tenant-n'))
      .set('Content-Type', 'application/octet-stream')
      .send(data);
    expect(uploaded.status).toBe(200);
    const updated = await request(t.http)
      .put(`/v1/images/${id}`)
      .set(as('tenant-n'))
      .set('x-image-meta-name', 'renamed');
    expect(updated.status).toBe(200);
    const download = await request(t.http)
      .get(`/v1/images/${id}`)
      .set(as('tenant-n', 'member', 'downloader'))
      .buffer(true)
      .parse(binaryParser);
    expect(download.status).toBe(200);
    expect(md5(download.body as Buffer)).toBe(md5(data));
    expect(
      (await request(t.http).delete(`/v1/images/${id}`).set(as('tenant-n')))
        .status,
    ).toBe(200);

    const about = () => received.filter((r) => imageIdOf(r.message) === id);
    await waitFor(
      () => about().some((r) => r.message.event_type === 'image.delete'),
      'image.delete to arrive',
      10_000,
    );
    const events = about();
    expect(events.map((r) => r.message.event_type)).toEqual([
      'image.create',
      'image.prepare',
      'image.upload',
      'image.activate',
      'image.update',
      'image.update',
      'image.send',
      'image.delete',
    ]);

    const start = Date.now() - 60_000;
    for (const r of events) {
      expect(r.routingKey).toBe('notifications.info');
      expect(r.contentType).toBe('application/json');
      expect(Object.keys(r.envelope).sort()).toEqual([
        'oslo.message',
        'oslo.version',
      ]);
      expect(r.envelope['oslo.version']).toBe('2.0');
      expect(typeof r.envelope['oslo.message']).toBe('string');
      expect(r.message).toMatchObject({
        publisher_id: `image.${hostname()}`,
        priority: 'INFO',
        message_id: expect.stringMatching(UUID),
        timestamp: expect.stringMatching(
          /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/,
        ),
      });
      const at = Date.parse(
        `${r.message.timestamp.replace(' ', 'T').slice(0, 23)}Z`,
      );
      expect(at).toBeGreaterThan(start);
      expect(at).toBeLessThanOrEqual(Date.now());
      expect(r.raw).not.toContain('file://');
      expectNoLocations(r.message.payload);
    }
    expect(new Set(events.map((r) => r.message.message_id)).size).toBe(
      events.length,
    );

    const payload = (type: string, n = 0) =>
      events.filter((r) => r.message.event_type === type)[n].message
        .payload as Record<string, unknown>;
    expect(payload('image.create')).toMatchObject({
      id,
      name: 'notified',
      status: 'queued',
      owner: 'tenant-n',
      properties: { distro: 'x' },
    });
    expect(payload('image.prepare')).toMatchObject({ id, status: 'saving' });
    for (const type of ['image.upload', 'image.activate']) {
      expect(payload(type)).toMatchObject({
        id,
        status: 'active',
        size: data.length,
        checksum: md5(data),
      });
    }
    expect(payload('image.update', 1)).toMatchObject({
      id,
      name: 'renamed',
      status: 'active',
    });
    expect(payload('image.send')).toEqual({
      bytes_sent: data.length,
      image_id: id,
      owner_id: 'tenant-n',
      receiver_tenant_id: 'tenant-n',
      receiver_user_id: 'downloader',
      destination_ip: expect.stringMatching(/127\.0\.0\.1/),
    });
    expect(payload('image.delete')).toMatchObject({
      id,
      status: 'deleted',
      deleted: true,
    });
  });

  it('publishes a failed upload (checksum mismatch) as image.upload on notifications.error', async () => {
    const wrong = 'f'.repeat(32);
    const res = await request(t.http)
      .post('/v1/images')
      .set(metaHeaders({ name: 'bad-checksum' }))
      .set('x-image-meta-checksum', wrong)
      .set('Content-Type', 'application/octet-stream')
      .send(Buffer.alloc(4096, 7));
    expect(res.status).toBe(400);

    const failure = () =>
      received.find(
        (r) =>
          r.routingKey === 'notifications.error' &&
          String(r.message.payload).includes(wrong),
      );
    await waitFor(
      () => failure() !== undefined,
      'the error notification',
      10_000,
    );
    const r = failure()!;
    expect(r.envelope['oslo.version']).toBe('2.0');
    expect(r.message).toMatchObject({
      event_type: 'image.upload',
      priority: 'ERROR',
      publisher_id: `image.${hostname()}`,
      message_id: expect.stringMatching(UUID),
    });
    expect(r.message.payload).toMatch(/checksum .* did not match/);
    expect(r.raw).not.toContain('file://');
  });
});

describe('notifications while the broker is unreachable', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({
      NOTIFICATION_DRIVER: 'messaging',
      // Nothing listens on port 1: every connection attempt is refused.
      TRANSPORT_URL: 'rabbit://guest:guest@127.0.0.1:1/',
      NOTIFICATION_EXCHANGE: 'glance-e2e-unreachable',
    });
  });
  afterAll(async () => t?.close());

  it('answers API requests promptly and reports the buffered events in /metrics', async () => {
    const slowest: number[] = [];
    for (let n = 0; n < 20; n++) {
      const started = Date.now();
      const res = await request(t.http)
        .post('/v1/images')
        .set(metaHeaders({ name: `offline-${n}` }));
      slowest.push(Date.now() - started);
      expect(res.status).toBe(201);
    }
    expect(Math.max(...slowest)).toBeLessThan(500);

    const metrics = await request(t.http).get('/metrics');
    expect(metrics.status).toBe(200);
    const depth = /^glance_notification_queue_depth (\d+)$/m.exec(metrics.text);
    expect(depth).not.toBeNull();
    expect(Number(depth![1])).toBeGreaterThanOrEqual(20);
  });
});
