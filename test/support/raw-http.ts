import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { TestApp } from './test-app.js';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** True when the connection failed or closed before the announced body arrived. */
  aborted: boolean;
}

/** The app's loopback port; starts listening on an ephemeral port the first time (supertest reuses it). */
export async function portOf(t: TestApp): Promise<number> {
  const server = t.http as http.Server;
  if (!server.listening) {
    await new Promise<void>((resolve) =>
      server.listen(0, '127.0.0.1', resolve),
    );
  }
  return (server.address() as AddressInfo).port;
}

export interface RawRequestOptions {
  method: string;
  path: string;
  headers?: Record<string, string>;
  /** Sent chunked unless headers carry a Content-Length. */
  body?: Readable | Buffer;
}

/**
 * One request over node:http with a fresh connection. Resolves with the
 * response as soon as it arrives, even when the server answered before
 * reading the whole body (write errors after that are expected and ignored).
 * A connection dropped mid-body yields `aborted: true` with the bytes received.
 */
export function rawRequest(
  port: number,
  options: RawRequestOptions,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: options.method,
      path: options.path,
      headers: { connection: 'close', ...options.headers },
      agent: false,
    });
    let answered = false;
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      let aborted = false;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('aborted', () => (aborted = true));
      res.on('error', () => (aborted = true));
      res.on('close', () => {
        const body = Buffer.concat(chunks);
        const length = res.headers['content-length'];
        if (!res.complete) aborted = true;
        if (length !== undefined && body.length !== Number(length))
          aborted = true;
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          aborted,
        });
      });
    });
    const body = options.body;
    if (body === undefined) {
      req.end();
    } else if (Buffer.isBuffer(body)) {
      req.end(body);
    } else {
      body.on('error', (err) => req.destroy(err));
      body.pipe(req);
    }
  });
}

/** A body that pushes `chunks` one by one, `delayMs` apart: uploads that overlap in time. */
export function slowBody(chunks: Buffer[], delayMs: number): Readable {
  let next = 0;
  return new Readable({
    read() {
      if (next >= chunks.length) {
        this.push(null);
        return;
      }
      const chunk = chunks[next++];
      setTimeout(() => this.push(chunk), delayMs);
    },
  });
}

/** `size` bytes of `fill`, cut into `count` roughly equal chunks. */
export function chunksOf(size: number, count: number, fill = 0x61): Buffer[] {
  const data = Buffer.alloc(size, fill);
  const step = Math.ceil(size / count);
  const out: Buffer[] = [];
  for (let i = 0; i < size; i += step) out.push(data.subarray(i, i + step));
  return out;
}

/**
 * Starts an octet-stream upload of a new image with id `id` and leaves it
 * open: the caller writes chunks and may destroy it to play a client that
 * goes away mid-upload. Connection errors are expected and ignored.
 */
export function openUpload(
  port: number,
  headers: http.OutgoingHttpHeaders,
): http.ClientRequest {
  const req = http.request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/v1/images',
    headers: { ...headers, 'content-type': 'application/octet-stream' },
    agent: false,
  });
  req.on('error', () => undefined);
  return req;
}

/**
 * A client like python-requests: sends the whole chunked body over a
 * keep-alive connection (pausing wherever `body` awaits) and reads the answer
 * only afterwards. A server that stops reading a body it refused makes this
 * client block, then fail with a reset, instead of seeing the answer.
 */
export async function sendAllThenRead(
  port: number,
  request: { method: string; path: string; headers: Record<string, string> },
  body: AsyncIterable<Buffer>,
): Promise<{ status: number; text: string }> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  // Failures surface through the write callbacks or as a close before the answer.
  socket.on('error', () => undefined);
  const write = (data: string | Buffer) =>
    new Promise<void>((resolve, reject) =>
      socket.write(data, (err) => (err ? reject(err) : resolve())),
    );
  const head = Object.entries({
    ...request.headers,
    host: `127.0.0.1:${port}`,
    'transfer-encoding': 'chunked',
  }).map(([k, v]) => `${k}: ${v}\r\n`);
  await write(`${request.method} ${request.path} HTTP/1.1\r\n${head.join('')}\r\n`);
  for await (const chunk of body) {
    await write(`${chunk.length.toString(16)}\r\n`);
    await write(chunk);
    await write('\r\n');
  }
  await write('0\r\n\r\n');
  // The whole answer: headers, then Content-Length bytes of body.
  const answer = await new Promise<Buffer>((resolve, reject) => {
    const check = () => {
      const all = Buffer.concat(received);
      const end = all.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = /content-length: *(\d+)/i.exec(all.subarray(0, end).toString());
      if (all.length >= end + 4 + Number(length?.[1] ?? 0)) resolve(all);
    };
    socket.on('data', check);
    socket.once('close', () => reject(new Error('connection closed before the answer')));
    check();
  });
  socket.destroy();
  const text = answer.toString();
  return {
    status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]),
    text: text.slice(text.indexOf('\r\n\r\n') + 4),
  };
}

/**
 * A client that hangs up at once: writes the request head (announcing
 * `contentLength` bytes) and the first `sent` bytes in one go, then closes
 * the connection without waiting for anything.
 */
export async function hangUpEarly(
  port: number,
  request: {
    method: string;
    path: string;
    headers: Record<string, string>;
    contentLength: number;
    sent: Buffer;
  },
): Promise<void> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  const head = Object.entries({
    ...request.headers,
    host: `127.0.0.1:${port}`,
    'content-type': 'application/octet-stream',
    'content-length': String(request.contentLength),
  }).map(([k, v]) => `${k}: ${v}\r\n`);
  socket.end(
    Buffer.concat([
      Buffer.from(`${request.method} ${request.path} HTTP/1.1\r\n${head.join('')}\r\n`),
      request.sent,
    ]),
  );
  socket.destroySoon();
  await once(socket, 'close');
}
