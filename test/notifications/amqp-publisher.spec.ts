import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { connect } from 'amqplib';
import type { Channel, ChannelModel, Options } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AmqpPublisher,
  parseTransportUrl,
} from '../../src/notifications/amqp-publisher.js';
import type { OsloNotification } from '../../src/notifications/oslo-envelope.js';

// The machine's real broker; these tests need it running on loopback.
const BROKER_PORT = 5672;
const BROKER_URL = `amqp://guest:guest@127.0.0.1:${BROKER_PORT}`;

interface Received {
  routingKey: string;
  contentType: string | undefined;
  envelope: Record<string, unknown>;
  message: OsloNotification;
}

class CapturingLogger {
  readonly lines: { level: string; msg: string }[] = [];
  log(msg: string): void {
    this.lines.push({ level: 'log', msg });
  }
  warn(msg: string): void {
    this.lines.push({ level: 'warn', msg });
  }
  error(msg: string): void {
    this.lines.push({ level: 'error', msg });
  }
  count(level: string, pattern: RegExp): number {
    return this.lines.filter((l) => l.level === level && pattern.test(l.msg))
      .length;
  }
}

/** Loopback TCP proxy in front of the broker that can be killed and restarted. */
class TcpProxy {
  port = 0;
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(BROKER_PORT, '127.0.0.1');
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {});
      }
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Cuts every proxied connection at once, then stops listening. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const socket of this.sockets) socket.destroy();
    if (server)
      await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

let admin: ChannelModel;
let adminChannel: Channel;
const exchanges: string[] = [];
const consumers: ChannelModel[] = [];

function uniqueExchange(): string {
  const name = `glance-test-${randomBytes(6).toString('hex')}`;
  exchanges.push(name);
  return name;
}

/** An exclusive queue bound to `notifications.*` on the exchange. */
async function consume(
  exchange: string,
  exchangeOptions: Options.AssertExchange = { durable: false },
): Promise<Received[]> {
  const conn = await connect(BROKER_URL);
  consumers.push(conn);
  const channel = await conn.createChannel();
  await channel.assertExchange(exchange, 'topic', exchangeOptions);
  const { queue } = await channel.assertQueue('', { exclusive: true });
  await channel.bindQueue(queue, exchange, 'notifications.*');
  const received: Received[] = [];
  await channel.consume(
    queue,
    (msg) => {
      if (!msg) return;
      const envelope = JSON.parse(msg.content.toString()) as Record<
        string,
        unknown
      >;
      received.push({
        routingKey: msg.fields.routingKey,
        contentType: msg.properties.contentType as string | undefined,
        envelope,
        message: JSON.parse(envelope['oslo.message'] as string),
      });
    },
    { noAck: true },
  );
  return received;
}

async function waitFor(
  condition: () => boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function seqs(received: Received[]): number[] {
  return received.map((r) => (r.message.payload as { seq: number }).seq);
}

function firstOccurrences(values: number[]): number[] {
  return [...new Set(values)];
}

beforeAll(async () => {
  admin = await connect(BROKER_URL);
  adminChannel = await admin.createChannel();
});

afterAll(async () => {
  for (const conn of consumers) await conn.close().catch(() => {});
  for (const exchange of exchanges) {
    await adminChannel.deleteExchange(exchange).catch(() => {});
  }
  await admin?.close();
});

describe('parseTransportUrl', () => {
  it('percent-decodes credentials and vhost and defaults port and vhost', () => {
    expect(
      parseTransportUrl('rabbit://us%40r:p%3Ass@broker:5673/my%2Fvhost'),
    ).toEqual([
      {
        hostname: 'broker',
        port: 5673,
        username: 'us@r',
        password: 'p:ss',
        vhost: 'my/vhost',
      },
    ]);
    expect(parseTransportUrl('rabbit://guest:guest@127.0.0.1/')).toEqual([
      {
        hostname: '127.0.0.1',
        port: 5672,
        username: 'guest',
        password: 'guest',
        vhost: '/',
      },
    ]);
  });

  it('accepts several hosts, reusing earlier credentials', () => {
    expect(
      parseTransportUrl('rabbit://a:b@h1:1,[::1]:2,c:d@h3/%2F').map((t) => [
        t.hostname,
        t.port,
        t.username,
        t.password,
        t.vhost,
      ]),
    ).toEqual([
      ['h1', 1, 'a', 'b', '/'],
      ['::1', 2, 'a', 'b', '/'],
      ['h3', 5672, 'c', 'd', '/'],
    ]);
  });

  it('rejects other schemes without echoing the password', () => {
    expect(() => parseTransportUrl('qpid://u:secret@h/')).toThrow(
      /qpid:\/\/\*\*\*@h/,
    );
  });
});

describe('AmqpPublisher against RabbitMQ', () => {
  it('publishes oslo v2 envelopes to the topic exchange by priority', async () => {
    const exchange = uniqueExchange();
    const received = await consume(exchange);
    const publisher = new AmqpPublisher({
      transportUrl: `rabbit://guest:guest@127.0.0.1:${BROKER_PORT}/`,
      exchange,
      publisherId: 'image.test-host',
      logger: new CapturingLogger(),
    });
    try {
      publisher.start();
      await waitFor(() => publisher.connected);
      publisher.publish('image.update', { id: 'img-1', seq: 1 }, 'info');
      publisher.publish('image.upload', { id: 'img-2', seq: 2 }, 'error');
      await waitFor(() => received.length === 2);

      const [info, error] = received;
      expect(info.routingKey).toBe('notifications.info');
      expect(error.routingKey).toBe('notifications.error');
      expect(info.contentType).toBe('application/json');
      expect(info.envelope['oslo.version']).toBe('2.0');
      expect(typeof info.envelope['oslo.message']).toBe('string');
      expect(info.message).toMatchObject({
        event_type: 'image.update',
        publisher_id: 'image.test-host',
        priority: 'INFO',
        payload: { id: 'img-1', seq: 1 },
      });
      expect(error.message).toMatchObject({
        event_type: 'image.upload',
        publisher_id: 'image.test-host',
        priority: 'ERROR',
        payload: { id: 'img-2', seq: 2 },
      });
      expect(info.message.timestamp).toMatch(
        /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/,
      );
      await waitFor(() => publisher.queueDepth === 0);
      expect(publisher.dropped).toBe(0);
    } finally {
      await publisher.close();
    }
    expect(publisher.connected).toBe(false);
  });

  it('never blocks while the broker is unreachable, and drops the oldest on overflow', async () => {
    const logger = new CapturingLogger();
    const publisher = new AmqpPublisher({
      transportUrl: 'rabbit://guest:guest@127.0.0.1:1/',
      exchange: uniqueExchange(),
      publisherId: 'image.test-host',
      maxBuffered: 500,
      reconnectDelayMs: 20,
      logger,
    });
    publisher.start();

    const started = performance.now();
    for (let seq = 0; seq < 1000; seq++) {
      publisher.publish('image.update', { seq, pad: 'x'.repeat(200) }, 'info');
    }
    const elapsed = performance.now() - started;
    console.info(`1000 publishes while unreachable: ${elapsed.toFixed(1)} ms`);
    expect(elapsed).toBeLessThan(100);
    expect(publisher.queueDepth).toBe(500);
    expect(publisher.dropped).toBe(500);
    expect(publisher.connected).toBe(false);
    // One warning for the burst, not one per dropped message.
    expect(logger.count('warn', /^Dropped/)).toBe(1);

    await waitFor(
      () => logger.count('warn', /connection to 127\.0\.0\.1:1 failed/) >= 2,
    );
    // Backoff doubles from reconnectDelayMs.
    expect(logger.count('warn', /retrying in 20 ms/)).toBe(1);
    expect(logger.count('warn', /retrying in 40 ms/)).toBe(1);

    const closeStarted = performance.now();
    await publisher.close();
    const closeElapsed = performance.now() - closeStarted;
    console.info(`close() while unreachable: ${closeElapsed.toFixed(1)} ms`);
    expect(closeElapsed).toBeLessThan(2500);
    expect(publisher.connected).toBe(false);

    // No reconnect attempts after close().
    const failures = logger.count('warn', /failed/);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(logger.count('warn', /failed/)).toBe(failures);

    publisher.publish('image.update', { seq: 1000 }, 'info');
    expect(publisher.dropped).toBe(501);
  });

  it('flushes the newest maxBuffered messages in order once the broker is reachable', async () => {
    const exchange = uniqueExchange();
    const received = await consume(exchange);
    const proxy = new TcpProxy();
    await proxy.start();
    await proxy.stop(); // keep the port, refuse connections for now
    const logger = new CapturingLogger();
    const publisher = new AmqpPublisher({
      transportUrl: `rabbit://guest:guest@127.0.0.1:${proxy.port}`,
      exchange,
      publisherId: 'image.test-host',
      maxBuffered: 100,
      reconnectDelayMs: 20,
      logger,
    });
    try {
      publisher.start();
      for (let seq = 0; seq < 1000; seq++) {
        publisher.publish('image.update', { seq }, 'info');
      }
      expect(publisher.queueDepth).toBe(100);
      expect(publisher.dropped).toBe(900);

      await proxy.start();
      await waitFor(() => publisher.queueDepth === 0);
      await waitFor(() => new Set(seqs(received)).size === 100);
      const expected = Array.from({ length: 100 }, (_, i) => 900 + i);
      expect(firstOccurrences(seqs(received))).toEqual(expected);
      expect(publisher.connected).toBe(true);
    } finally {
      await publisher.close();
      await proxy.stop();
    }
  });

  it('reconnects after the connection drops and re-sends everything unconfirmed', async () => {
    const exchange = uniqueExchange();
    const received = await consume(exchange);
    const proxy = new TcpProxy();
    await proxy.start();
    const logger = new CapturingLogger();
    const publisher = new AmqpPublisher({
      transportUrl: `rabbit://guest:guest@127.0.0.1:${proxy.port}/`,
      exchange,
      publisherId: 'image.test-host',
      reconnectDelayMs: 50,
      logger,
    });
    try {
      publisher.start();
      await waitFor(() => publisher.connected);
      for (let seq = 0; seq < 50; seq++) {
        publisher.publish('image.update', { seq }, 'info');
      }
      await waitFor(() => publisher.queueDepth === 0);
      await waitFor(() => received.length >= 50);

      // Cut the connection in the same tick: none of these can be confirmed.
      for (let seq = 50; seq < 250; seq++) {
        publisher.publish('image.update', { seq }, 'info');
      }
      const stopped = proxy.stop();
      expect(publisher.queueDepth).toBe(200);
      await stopped;
      await waitFor(() => !publisher.connected);

      for (let seq = 250; seq < 300; seq++) {
        publisher.publish('image.update', { seq }, 'warn');
      }
      expect(publisher.queueDepth).toBe(250);
      // Let a few reconnect attempts fail against the closed port.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(publisher.connected).toBe(false);
      expect(logger.count('warn', /lost/)).toBe(1);

      const restarted = performance.now();
      await proxy.start();
      await waitFor(() => publisher.connected);
      await waitFor(() => new Set(seqs(received)).size === 300);
      console.info(
        `all 300 messages received ${(performance.now() - restarted).toFixed(0)} ms after the proxy restarted`,
      );
      await waitFor(() => publisher.queueDepth === 0);

      const all = Array.from({ length: 300 }, (_, i) => i);
      expect(firstOccurrences(seqs(received))).toEqual(all);
      expect(publisher.dropped).toBe(0);
      // A re-sent copy is the same message: same message_id and _unique_id.
      const idsBySeq = new Map<number, Set<string>>();
      for (const r of received) {
        const seq = (r.message.payload as { seq: number }).seq;
        const ids = idsBySeq.get(seq) ?? new Set<string>();
        ids.add(`${r.message.message_id}/${r.message._unique_id}`);
        idsBySeq.set(seq, ids);
      }
      expect([...idsBySeq.values()].every((ids) => ids.size === 1)).toBe(true);
      expect(
        received.filter((r) => r.routingKey === 'notifications.warn'),
      ).toHaveLength(50);
    } finally {
      await publisher.close();
      await proxy.stop();
    }
  });

  it('close() flushes what start() has not yet had time to send', async () => {
    const exchange = uniqueExchange();
    const received = await consume(exchange);
    const publisher = new AmqpPublisher({
      transportUrl: `rabbit://guest:guest@127.0.0.1:${BROKER_PORT}/`,
      exchange,
      publisherId: 'image.test-host',
      logger: new CapturingLogger(),
    });
    publisher.start();
    for (let seq = 0; seq < 300; seq++) {
      publisher.publish('image.update', { seq }, 'info');
    }
    expect(publisher.connected).toBe(false);
    const started = performance.now();
    await publisher.close();
    console.info(
      `close() with 300 buffered: ${(performance.now() - started).toFixed(1)} ms`,
    );
    expect(publisher.queueDepth).toBe(0);
    await waitFor(() => new Set(seqs(received)).size === 300);
    expect(publisher.connected).toBe(false);
  });

  it('publishes to an existing exchange declared with other flags', async () => {
    const exchange = uniqueExchange();
    const received = await consume(exchange, { durable: true });
    const logger = new CapturingLogger();
    const publisher = new AmqpPublisher({
      transportUrl: `rabbit://guest:guest@127.0.0.1:${BROKER_PORT}/`,
      exchange,
      publisherId: 'image.test-host',
      logger,
    });
    try {
      publisher.start();
      publisher.publish('image.delete', { seq: 7 }, 'info');
      await waitFor(() => received.length === 1);
      expect(received[0].message.event_type).toBe('image.delete');
      expect(logger.count('warn', /different properties/)).toBe(1);
    } finally {
      await publisher.close();
    }
  });

  it('logs instead of throwing when a payload cannot be serialised', async () => {
    const logger = new CapturingLogger();
    const publisher = new AmqpPublisher({
      transportUrl: 'rabbit://guest:guest@127.0.0.1:1/',
      publisherId: 'image.test-host',
      logger,
    });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() =>
      publisher.publish('image.update', cyclic, 'info'),
    ).not.toThrow();
    expect(publisher.queueDepth).toBe(0);
    expect(logger.count('error', /image\.update not sent/)).toBe(1);
    await publisher.close();
  });
});
