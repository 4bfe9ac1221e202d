import { connect } from 'amqplib';
import type { ChannelModel, ConfirmChannel, Options } from 'amqplib';
import { buildOsloEnvelope } from './oslo-envelope.js';
import type { NotificationPriority } from './oslo-envelope.js';

export interface PublisherLogger {
  log(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export interface AmqpPublisherOptions {
  /** rabbit://user:pass@host:port[,user:pass@host2:port]/vhost */
  transportUrl: string;
  exchange?: string;
  topic?: string;
  publisherId: string;
  maxBuffered?: number;
  reconnectDelayMs?: number;
  /** How long close() waits for buffered messages to be confirmed. */
  closeTimeoutMs?: number;
  logger?: PublisherLogger;
}

export interface AmqpTarget {
  hostname: string;
  port: number;
  username: string;
  password: string;
  vhost: string;
}

const MAX_RECONNECT_DELAY_MS = 30_000;
const CONNECT_TIMEOUT_MS = 10_000;
const DROP_WARN_INTERVAL_MS = 10_000;
const PUBLISH_OPTIONS: Options.Publish = {
  contentType: 'application/json',
  contentEncoding: 'utf-8',
};

interface PendingMessage {
  routingKey: string;
  body: Buffer;
}

/**
 * Publishes oslo.messaging (v2 envelope) notifications to a RabbitMQ topic
 * exchange. publish() never blocks or throws: messages wait in a bounded
 * buffer until the broker confirms them, surviving reconnects (at-least-once).
 */
export class AmqpPublisher {
  private readonly targets: AmqpTarget[];
  private readonly exchange: string;
  private readonly topic: string;
  private readonly publisherId: string;
  private readonly maxBuffered: number;
  private readonly baseDelayMs: number;
  private readonly closeTimeoutMs: number;
  private readonly logger: PublisherLogger;

  private readonly unsent = new Fifo<PendingMessage>();
  // Sent on the current channel, awaiting the broker's confirm; in send order.
  private readonly inFlight = new Set<PendingMessage>();

  private conn: ChannelModel | null = null;
  private channel: ConfirmChannel | null = null;
  // Each connection attempt owns one generation; callbacks of older ones are ignored.
  private generation = 0;
  private connecting = false;
  private waitingForDrain = false;
  private started = false;
  private closeRequested = false;
  private closePromise: Promise<void> | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private nextDelayMs: number;
  private attempts = 0;

  private droppedTotal = 0;
  private unreportedDrops = 0;
  private lastDropWarnAt = -Infinity;

  constructor(options: AmqpPublisherOptions) {
    this.targets = parseTransportUrl(options.transportUrl);
    this.exchange = options.exchange ?? 'glance';
    this.topic = options.topic ?? 'notifications';
    this.publisherId = options.publisherId;
    this.maxBuffered = Math.max(1, options.maxBuffered ?? 10_000);
    this.baseDelayMs = Math.max(1, options.reconnectDelayMs ?? 1000);
    this.closeTimeoutMs = options.closeTimeoutMs ?? 2000;
    this.logger = options.logger ?? console;
    this.nextDelayMs = this.baseDelayMs;
  }

  /** Messages buffered or awaiting the broker's confirm. */
  get queueDepth(): number {
    return this.unsent.length + this.inFlight.size;
  }

  get dropped(): number {
    return this.droppedTotal;
  }

  get connected(): boolean {
    return this.channel !== null;
  }

  start(): void {
    if (this.started || this.closeRequested) return;
    this.started = true;
    void this.connectOnce();
  }

  publish(
    eventType: string,
    payload: unknown,
    priority: NotificationPriority,
  ): void {
    try {
      if (this.closeRequested) {
        this.recordDrop('the publisher is closed');
        return;
      }
      const envelope = buildOsloEnvelope({
        publisherId: this.publisherId,
        eventType,
        payload,
        priority,
      });
      if (this.queueDepth >= this.maxBuffered) this.dropOldest();
      this.unsent.push({
        routingKey: `${this.topic}.${priority}`,
        body: Buffer.from(JSON.stringify(envelope)),
      });
      this.pump();
    } catch (err) {
      this.logger.error(
        `Notification ${eventType} not sent: ${describeError(err)}`,
      );
    }
  }

  close(): Promise<void> {
    this.closePromise ??= this.shutdown();
    return this.closePromise;
  }

  private async shutdown(): Promise<void> {
    this.closeRequested = true;
    if (this.reconnectTimer) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
    }
    const deadline = Date.now() + this.closeTimeoutMs;
    while (
      this.queueDepth > 0 &&
      (this.channel !== null || this.connecting) &&
      Date.now() < deadline
    ) {
      await sleep(10);
    }
    if (this.queueDepth > 0) {
      this.logger.warn(
        `Closing the notification publisher with ${this.queueDepth} unconfirmed notification(s)`,
      );
    }
    if (this.unreportedDrops > 0) this.reportDrops('the buffer was full');
    const remaining = Math.max(deadline - Date.now(), 500);
    await withTimeout(this.teardown(this.generation, 'closed'), remaining);
  }

  private async connectOnce(): Promise<void> {
    if (this.closeRequested) return;
    const generation = this.generation;
    const target = this.targets[this.attempts++ % this.targets.length];
    const where = `${target.hostname}:${target.port}`;
    this.connecting = true;
    try {
      const conn = await connect(
        {
          protocol: 'amqp',
          hostname: target.hostname,
          port: target.port,
          username: target.username,
          password: target.password,
          // amqplib percent-decodes the vhost itself.
          vhost: encodeURIComponent(target.vhost),
        },
        {
          timeout: CONNECT_TIMEOUT_MS,
          clientProperties: { connection_name: this.publisherId },
        },
      );
      conn.on(
        'error',
        (err: Error) => void this.teardown(generation, err, where),
      );
      conn.on('close', () => void this.teardown(generation, 'closed', where));
      if (generation !== this.generation) {
        // close() ended this attempt while it was connecting.
        void closeQuietly(conn);
        return;
      }
      this.conn = conn;
      conn.on('blocked', (reason: string) =>
        this.logger.warn(`RabbitMQ blocked publishing: ${reason}`),
      );
      conn.on('unblocked', () => this.logger.log('RabbitMQ unblocked'));

      const channel = await this.openChannel(conn);
      if (generation !== this.generation) return;
      channel.on(
        'error',
        (err: Error) => void this.teardown(generation, err, where),
      );
      channel.on(
        'close',
        () => void this.teardown(generation, 'channel closed', where),
      );
      channel.on('drain', () => {
        this.waitingForDrain = false;
        this.pump();
      });
      this.channel = channel;
      this.connecting = false;
      this.nextDelayMs = this.baseDelayMs;
      this.logger.log(
        `Connected to RabbitMQ at ${where}; ${this.queueDepth} notification(s) buffered`,
      );
      if (this.unreportedDrops > 0) this.reportDrops('the buffer was full');
      this.pump();
    } catch (err) {
      void this.teardown(generation, err, where);
    }
  }

  private async openChannel(conn: ChannelModel): Promise<ConfirmChannel> {
    const channel = await conn.createConfirmChannel();
    channel.on('error', () => {}); // reported through the awaited call
    try {
      // As oslo.messaging's rabbit driver declares it (amqp_durable_queues=False).
      await channel.assertExchange(this.exchange, 'topic', {
        durable: false,
        autoDelete: false,
      });
      return channel;
    } catch (err) {
      if ((err as { code?: number }).code !== 406) throw err;
      // The exchange exists with other flags (e.g. durable); use it as it is.
      this.logger.warn(
        `Exchange ${this.exchange} exists with different properties; publishing to it unchanged`,
      );
      const retry = await conn.createConfirmChannel();
      retry.on('error', () => {});
      await retry.checkExchange(this.exchange);
      return retry;
    }
  }

  /** Sends buffered messages on the open channel, in order. */
  private pump(): void {
    const channel = this.channel;
    if (channel === null) return;
    const generation = this.generation;
    while (!this.waitingForDrain && this.unsent.length > 0) {
      const message = this.unsent.shift()!;
      this.inFlight.add(message);
      let writable: boolean;
      try {
        writable = channel.publish(
          this.exchange,
          message.routingKey,
          message.body,
          PUBLISH_OPTIONS,
          (err: unknown) => this.onConfirm(generation, message, err),
        );
      } catch (err) {
        void this.teardown(generation, err);
        return;
      }
      if (!writable) this.waitingForDrain = true;
    }
  }

  private onConfirm(
    generation: number,
    message: PendingMessage,
    err: unknown,
  ): void {
    if (generation !== this.generation) return;
    if (err) {
      // A nack or a closing channel: reconnect and resend all unconfirmed.
      void this.teardown(generation, err);
      return;
    }
    this.inFlight.delete(message);
  }

  /**
   * Ends a connection attempt exactly once: unconfirmed messages go back to
   * the head of the buffer, the connection is closed and, unless close() was
   * called, the next attempt is scheduled.
   */
  private teardown(
    generation: number,
    reason: unknown,
    where?: string,
  ): Promise<void> {
    if (generation !== this.generation) return Promise.resolve();
    this.generation++;
    const wasConnected = this.channel !== null;
    const conn = this.conn;
    this.conn = null;
    this.channel = null;
    this.connecting = false;
    this.waitingForDrain = false;
    if (this.inFlight.size > 0) {
      this.unsent.prepend([...this.inFlight]);
      this.inFlight.clear();
    }
    const closed = conn ? closeQuietly(conn) : Promise.resolve();
    if (!this.closeRequested) {
      const delay = this.scheduleReconnect();
      const what = wasConnected ? 'lost' : 'failed';
      this.logger.warn(
        `RabbitMQ connection${where ? ` to ${where}` : ''} ${what}: ${describeError(reason)}; ` +
          `retrying in ${delay} ms, ${this.queueDepth} notification(s) buffered`,
      );
    }
    return closed;
  }

  private scheduleReconnect(): number {
    const delay = this.nextDelayMs;
    this.nextDelayMs = Math.min(
      delay * 2,
      Math.max(MAX_RECONNECT_DELAY_MS, this.baseDelayMs),
    );
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connectOnce();
    }, delay);
    // A pending retry alone must not keep the process alive.
    this.reconnectTimer.unref();
    return delay;
  }

  private dropOldest(): void {
    const oldestInFlight = this.inFlight.values().next();
    if (!oldestInFlight.done) this.inFlight.delete(oldestInFlight.value);
    else this.unsent.shift();
    this.recordDrop('the buffer was full');
  }

  private recordDrop(why: string): void {
    this.droppedTotal++;
    this.unreportedDrops++;
    if (Date.now() - this.lastDropWarnAt >= DROP_WARN_INTERVAL_MS) {
      this.reportDrops(why);
    }
  }

  private reportDrops(why: string): void {
    this.logger.warn(
      `Dropped ${this.unreportedDrops} notification(s) because ${why} ` +
        `(limit ${this.maxBuffered}, ${this.droppedTotal} dropped in total)`,
    );
    this.unreportedDrops = 0;
    this.lastDropWarnAt = Date.now();
  }
}

/**
 * Parses an oslo.messaging transport URL:
 * rabbit://user:pass@host:port[,user:pass@host2:port2]/vhost. Credentials and
 * vhost are percent-decoded; a host without credentials reuses the previous
 * host's; an empty vhost means '/'.
 */
export function parseTransportUrl(url: string): AmqpTarget[] {
  const match = /^(rabbit|amqp|kombu):\/\/([^/?#]*)(?:\/([^?#]*))?/.exec(url);
  if (!match) {
    throw new Error(
      `Unsupported transport URL (expected rabbit://...): ${redact(url)}`,
    );
  }
  const vhost = match[3] ? decodeURIComponent(match[3]) : '/';
  let username = 'guest';
  let password = 'guest';
  return match[2].split(',').map((netloc) => {
    const at = netloc.lastIndexOf('@');
    if (at >= 0) {
      const userinfo = netloc.slice(0, at);
      const colon = userinfo.indexOf(':');
      username = decodeURIComponent(
        colon >= 0 ? userinfo.slice(0, colon) : userinfo,
      );
      password =
        colon >= 0 ? decodeURIComponent(userinfo.slice(colon + 1)) : '';
    }
    const hostport = netloc.slice(at + 1);
    const parts = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(hostport);
    if (!parts) {
      throw new Error(`Invalid host in transport URL: ${redact(url)}`);
    }
    return {
      hostname: parts[1].replace(/^\[|\]$/g, '') || 'localhost',
      port: parts[2] ? Number(parts[2]) : 5672,
      username,
      password,
      vhost,
    };
  });
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/g, '//***@');
}

/** Bounded-work FIFO: shift() is O(1) amortised, unlike Array#shift. */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  prepend(items: T[]): void {
    this.items = [...items, ...this.items.slice(this.head)];
    this.head = 0;
  }
}

function closeQuietly(conn: ChannelModel): Promise<void> {
  try {
    return conn.close().catch(() => {});
  } catch {
    return Promise.resolve(); // already closed
  }
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
