import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ExternalUrlGuard } from '../../src/stores/external-url-guard.js';
import type { HostLookup } from '../../src/stores/external-url-guard.js';
import { HttpStore } from '../../src/stores/http.store.js';
import { StoreError, StoreErrorCode } from '../../src/stores/store.error.js';

const IMAGE = randomBytes(1024 * 1024 + 17);
const BASIC_ALICE = `Basic ${Buffer.from('alice:s3cr3t').toString('base64')}`;

interface SeenRequest {
  method: string;
  path: string;
  host: string | undefined;
  authorization: string | undefined;
  range: string | undefined;
}

let server: http.Server;
let port: number;
let base: string;
let seen: SeenRequest[] = [];
const bodyClosed: string[] = [];

function sendImage(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  honourRange: boolean,
): void {
  const match = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (honourRange && match) {
    const start = Number(match[1]);
    const end = Math.min(Number(match[2]), IMAGE.length - 1);
    res.writeHead(206, {
      'content-length': end - start + 1,
      'content-range': `bytes ${start}-${end}/${IMAGE.length}`,
    });
    res.end(req.method === 'HEAD' ? undefined : IMAGE.subarray(start, end + 1));
    return;
  }
  res.writeHead(200, { 'content-length': IMAGE.length });
  res.end(req.method === 'HEAD' ? undefined : IMAGE);
}

function redirect(res: http.ServerResponse, to: string, status = 302): void {
  res.writeHead(status, { location: to, 'content-length': 0 });
  res.end();
}

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const path = req.url ?? '/';
  seen.push({
    method: req.method ?? '',
    path,
    host: req.headers.host,
    authorization: req.headers.authorization,
    range: req.headers.range,
  });
  const hop = /^\/r\/(\d+)$/.exec(path);
  if (hop) {
    const n = Number(hop[1]);
    redirect(res, n === 0 ? '/image' : `/r/${n - 1}`, n % 2 ? 301 : 307);
    return;
  }
  switch (path) {
    case '/image':
      sendImage(req, res, true);
      return;
    case '/no-range-support':
      sendImage(req, res, false);
      return;
    case '/chunked':
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      res.write(IMAGE.subarray(0, 1000));
      res.end(IMAGE.subarray(1000, 5000));
      return;
    case '/head-not-allowed':
      if (req.method === 'HEAD') {
        res.writeHead(405, { allow: 'GET' });
        res.end();
        return;
      }
      sendImage(req, res, true);
      return;
    case '/head-without-length':
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      res.end();
      return;
    case '/missing':
      res.writeHead(404);
      res.end('not here');
      return;
    case '/broken':
      res.writeHead(500);
      res.end('boom');
      return;
    case '/forbidden':
      res.writeHead(403);
      res.end();
      return;
    case '/truncated':
      res.writeHead(200, { 'content-length': 100_000 });
      res.write(IMAGE.subarray(0, 30_000), () => res.socket?.destroy());
      return;
    case '/truncated-chunked':
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      res.write(IMAGE.subarray(0, 30_000), () => res.socket?.destroy());
      return;
    case '/stall-body':
      res.writeHead(200, { 'content-length': IMAGE.length });
      res.write(IMAGE.subarray(0, 10));
      return;
    case '/stall-headers':
      return;
    case '/big':
      res.on('close', () => bodyClosed.push('/big'));
      res.writeHead(200, { 'content-length': IMAGE.length * 64 });
      (function pump() {
        while (!res.destroyed && res.write(IMAGE)) {
          // fill until backpressure
        }
        if (!res.destroyed) res.once('drain', pump);
      })();
      return;
    case '/auth':
      if (req.headers.authorization !== BASIC_ALICE) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="images"' });
        res.end();
        return;
      }
      sendImage(req, res, true);
      return;
    case '/auth-same-origin':
      redirect(res, '/auth');
      return;
    case '/auth-other-origin':
      redirect(res, `http://images.test:${port}/auth`);
      return;
    case '/to-metadata':
      redirect(res, 'http://169.254.169.254/latest/meta-data/');
      return;
    case '/to-internal-name':
      redirect(res, `http://internal.invalid:${port}/image`);
      return;
    case '/to-named-allowed':
      redirect(res, `http://images.test:${port}/image`);
      return;
    case '/to-ftp':
      redirect(res, 'ftp://example.test/image');
      return;
    default:
      res.writeHead(400);
      res.end();
  }
}

/** Stands in for DNS: no real resolver is ever asked. */
const asked: string[] = [];
const lookup: HostLookup = async (host) => {
  asked.push(host);
  if (host === 'images.test') return ['127.0.0.1'];
  if (host === 'internal.invalid') return ['10.0.0.1'];
  const err: NodeJS.ErrnoException = new Error(`ENOTFOUND ${host}`);
  err.code = 'ENOTFOUND';
  throw err;
};

function makeStore(
  options: {
    allowlist?: string[];
    maxRedirects?: number;
    timeoutMs?: number;
  } = {},
): HttpStore {
  const guard = new ExternalUrlGuard({
    allowlist: options.allowlist ?? ['127.0.0.1/32'],
    lookup,
  });
  return new HttpStore({
    guard,
    maxRedirects: options.maxRedirects,
    timeoutMs: options.timeoutMs,
  });
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function storeError(promise: Promise<unknown>): Promise<StoreError> {
  const err = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreError);
  return err as StoreError;
}

beforeAll(async () => {
  server = http.createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  seen = [];
  asked.length = 0;
});

describe('HttpStore', () => {
  const store = makeStore();

  it('describes itself as the read-only http store', async () => {
    expect(store.name).toBe('http');
    expect(store.schemes).toEqual(['http', 'https']);
    expect(store.writable).toBe(false);
    await expect(store.check()).resolves.toBeUndefined();
    await expect(store.delete()).resolves.toBeUndefined();
    const err = await storeError(store.add());
    expect(err.code).toBe(StoreErrorCode.ReadOnly);
  });

  describe('getSize', () => {
    it('returns Content-Length from a HEAD request', async () => {
      await expect(store.getSize(`${base}/image`)).resolves.toBe(IMAGE.length);
      expect(seen.map((r) => r.method)).toEqual(['HEAD']);
    });

    it('falls back to GET when HEAD is not allowed, without reading the body', async () => {
      await expect(store.getSize(`${base}/head-not-allowed`)).resolves.toBe(
        IMAGE.length,
      );
      expect(seen.map((r) => r.method)).toEqual(['HEAD', 'GET']);
    });

    it('reports 0 when the size is not announced', async () => {
      await expect(store.getSize(`${base}/head-without-length`)).resolves.toBe(
        0,
      );
    });

    it('follows redirects and re-checks each hop', async () => {
      await expect(store.getSize(`${base}/r/4`)).resolves.toBe(IMAGE.length);
      expect(seen.map((r) => r.path)).toEqual([
        '/r/4',
        '/r/3',
        '/r/2',
        '/r/1',
        '/r/0',
        '/image',
      ]);
    });

    it.each([
      ['/missing', StoreErrorCode.NotFound],
      ['/broken', StoreErrorCode.Unavailable],
      ['/forbidden', StoreErrorCode.BadLocation],
    ])('maps %s to %s', async (path, code) => {
      const err = await storeError(store.getSize(`${base}${path}`));
      expect(err.code).toBe(code);
    });
  });

  describe('get', () => {
    it('streams the exact bytes and reports the size', async () => {
      const { stream, size } = await store.get(`${base}/image`);
      expect(size).toBe(IMAGE.length);
      const body = await collect(stream);
      expect(body.equals(IMAGE)).toBe(true);
      expect(seen[0].range).toBeUndefined();
    });

    it('reports an unknown size as null for a chunked body', async () => {
      const { stream, size } = await store.get(`${base}/chunked`);
      expect(size).toBeNull();
      expect((await collect(stream)).equals(IMAGE.subarray(0, 5000))).toBe(
        true,
      );
    });

    it('sends a Range header and returns the partial body', async () => {
      const { stream, size } = await store.get(`${base}/image`, {
        start: 1000,
        end: 70_999,
      });
      expect(seen[0].range).toBe('bytes=1000-70999');
      expect(size).toBe(70_000);
      expect((await collect(stream)).equals(IMAGE.subarray(1000, 71_000))).toBe(
        true,
      );
    });

    it('cuts the range itself when the server ignores Range', async () => {
      const { stream, size } = await store.get(`${base}/no-range-support`, {
        start: 70_000,
        end: 200_000,
      });
      expect(size).toBe(130_001);
      expect(
        (await collect(stream)).equals(IMAGE.subarray(70_000, 200_001)),
      ).toBe(true);
    });

    it('follows a redirect chain within the bound', async () => {
      const { stream } = await makeStore({ maxRedirects: 3 }).get(
        `${base}/r/2`,
      );
      expect((await collect(stream)).equals(IMAGE)).toBe(true);
      expect(seen).toHaveLength(4);
    });

    it('refuses more redirects than allowed with BAD_LOCATION', async () => {
      const err = await storeError(
        makeStore({ maxRedirects: 3 }).get(`${base}/r/3`),
      );
      expect(err.code).toBe(StoreErrorCode.BadLocation);
      expect(err.message).toMatch(/exceeded 3 redirects/);
      expect(seen).toHaveLength(4);
      const dflt = await storeError(store.getSize(`${base}/r/5`));
      expect(dflt.code).toBe(StoreErrorCode.BadLocation);
      expect(seen).toHaveLength(4 + 6);
    });

    it('refuses a redirect to the metadata address without connecting to it', async () => {
      const err = await storeError(store.get(`${base}/to-metadata`));
      expect(err.code).toBe(StoreErrorCode.Forbidden);
      expect(err.message).toContain('169.254.169.254');
      expect(seen).toHaveLength(1);
    });

    it('refuses a redirect to a name that resolves to a private address', async () => {
      const err = await storeError(store.get(`${base}/to-internal-name`));
      expect(err.code).toBe(StoreErrorCode.Forbidden);
      expect(err.message).toContain('10.0.0.1');
      expect(asked).toEqual(['internal.invalid']);
      expect(seen).toHaveLength(1);
    });

    it('refuses a redirect to a non-http scheme', async () => {
      const err = await storeError(store.get(`${base}/to-ftp`));
      expect(err.code).toBe(StoreErrorCode.BadLocation);
    });

    it('connects to the checked address while keeping the original Host header', async () => {
      const { stream } = await store.get(`${base}/to-named-allowed`);
      expect((await collect(stream)).equals(IMAGE)).toBe(true);
      expect(asked).toEqual(['images.test']);
      expect(seen[1]).toMatchObject({
        path: '/image',
        host: `images.test:${port}`,
      });
    });

    it.each([
      ['/missing', StoreErrorCode.NotFound],
      ['/broken', StoreErrorCode.Unavailable],
    ])('maps %s to %s', async (path, code) => {
      const err = await storeError(store.get(`${base}${path}`));
      expect(err.code).toBe(code);
    });

    it('maps a refused connection to UNAVAILABLE', async () => {
      const closed = http.createServer();
      await new Promise<void>((resolve) =>
        closed.listen(0, '127.0.0.1', resolve),
      );
      const deadPort = (closed.address() as AddressInfo).port;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      const err = await storeError(
        store.get(`http://127.0.0.1:${deadPort}/image`),
      );
      expect(err.code).toBe(StoreErrorCode.Unavailable);
      expect(err.message).toContain('ECONNREFUSED');
      const sizeErr = await storeError(
        store.getSize(`http://127.0.0.1:${deadPort}/image`),
      );
      expect(sizeErr.code).toBe(StoreErrorCode.Unavailable);
    });

    it('maps a server that never answers to UNAVAILABLE after the timeout', async () => {
      const err = await storeError(
        makeStore({ timeoutMs: 300 }).getSize(`${base}/stall-headers`),
      );
      expect(err.code).toBe(StoreErrorCode.Unavailable);
      expect(err.message).toMatch(/300 ms/);
    });

    it('errors the stream when the body stalls past the timeout', async () => {
      const { stream } = await makeStore({ timeoutMs: 300 }).get(
        `${base}/stall-body`,
      );
      const err = await storeError(collect(stream));
      expect(err.code).toBe(StoreErrorCode.Unavailable);
    });

    it('does not count a slow consumer as a stalled server', async () => {
      const { stream } = await makeStore({ timeoutMs: 300 }).get(
        `${base}/image`,
      );
      const chunks: Buffer[] = [];
      for await (const chunk of stream) {
        if (chunks.length === 0) await new Promise((r) => setTimeout(r, 700));
        chunks.push(chunk as Buffer);
      }
      expect(Buffer.concat(chunks).equals(IMAGE)).toBe(true);
    });

    it.each(['/truncated', '/truncated-chunked'])(
      'errors the stream when %s ends before the whole body',
      async (path) => {
        const { stream } = await store.get(`${base}${path}`);
        const err = await storeError(collect(stream));
        expect(err.code).toBe(StoreErrorCode.Unavailable);
      },
    );

    it('closes the connection when the consumer stops reading', async () => {
      const { stream } = await store.get(`${base}/big`);
      for await (const chunk of stream) {
        expect((chunk as Buffer).length).toBeGreaterThan(0);
        break;
      }
      await expect.poll(() => bodyClosed.includes('/big')).toBe(true);
    });
  });

  describe('credentials in the location', () => {
    it('sends userinfo as Basic auth', async () => {
      const { stream } = await store.get(
        `http://alice:s3cr3t@127.0.0.1:${port}/auth`,
      );
      expect((await collect(stream)).equals(IMAGE)).toBe(true);
      expect(seen[0].authorization).toBe(BASIC_ALICE);
      await expect(
        store.getSize(`http://alice:s3cr3t@127.0.0.1:${port}/auth`),
      ).resolves.toBe(IMAGE.length);
    });

    it('decodes percent-encoded userinfo', async () => {
      await store.getSize(`http://al%69ce:p%40ss@127.0.0.1:${port}/image`);
      expect(seen[0].authorization).toBe(
        `Basic ${Buffer.from('alice:p@ss').toString('base64')}`,
      );
    });

    it('keeps credentials across a same-origin redirect only', async () => {
      await expect(
        store.getSize(`http://alice:s3cr3t@127.0.0.1:${port}/auth-same-origin`),
      ).resolves.toBe(IMAGE.length);
      expect(seen.map((r) => r.authorization)).toEqual([
        BASIC_ALICE,
        BASIC_ALICE,
      ]);

      seen = [];
      const err = await storeError(
        store.getSize(
          `http://alice:s3cr3t@127.0.0.1:${port}/auth-other-origin`,
        ),
      );
      expect(err.code).toBe(StoreErrorCode.BadLocation);
      expect(seen.map((r) => r.authorization)).toEqual([
        BASIC_ALICE,
        undefined,
      ]);
    });

    it('never puts credentials in error messages', async () => {
      for (const path of [
        '/missing',
        '/broken',
        '/forbidden',
        '/to-metadata',
      ]) {
        const err = await storeError(
          store.get(`http://alice:s3cr3t@127.0.0.1:${port}${path}`),
        );
        expect(err.message).not.toContain('s3cr3t');
        expect(err.message).not.toContain('alice');
      }
      const { stream } = await store.get(
        `http://alice:s3cr3t@127.0.0.1:${port}/truncated`,
      );
      const err = await storeError(collect(stream));
      expect(err.message).not.toContain('s3cr3t');
    });
  });

  describe('without an allowlist', () => {
    const strict = makeStore({ allowlist: [] });

    it('refuses the local server before sending anything', async () => {
      for (const location of [
        `${base}/image`,
        `http://localhost:${port}/image`,
        `http://2130706433:${port}/image`,
        `http://[::ffff:127.0.0.1]:${port}/image`,
      ]) {
        const err = await storeError(strict.get(location));
        expect(err.code, location).toBe(StoreErrorCode.Forbidden);
        const sizeErr = await storeError(strict.getSize(location));
        expect(sizeErr.code, location).toBe(StoreErrorCode.Forbidden);
      }
      expect(seen).toHaveLength(0);
    });
  });
});
