import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import http from 'node:http';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScrubberService } from '../../src/images/scrubber.service.js';
import {
  binaryParser,
  md5,
  storeFiles,
  storeFilesOf,
  waitFor,
} from '../support/image-assertions.js';
import { createImage, metaHeaders } from '../support/image-builder.js';
import { ADMIN, as, createTestApp, type TestApp } from '../support/test-app.js';

const DATA = randomBytes(300 * 1024 + 7);
const OTHER = randomBytes(200 * 1024 + 3);
/** Secrets carried by external URLs; they must never come back out of the API. */
const PASSWORD = 's3cr3t-pw';
const TOKEN = 't0ken-123';

interface SeenRequest {
  method: string;
  url: string;
  authorization?: string;
}

interface SourceServer {
  port: number;
  requests: SeenRequest[];
  /** Lets the next GET of /held answer (it waits until then). */
  release: () => void;
  close: () => Promise<void>;
}

/**
 * The external server images are copied from or registered at: every
 * request is recorded, so a test can tell that nothing was fetched.
 */
async function startSourceServer(host: string): Promise<SourceServer> {
  const requests: SeenRequest[] = [];
  let release = () => {};
  let held = new Promise<void>((r) => (release = r));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
    });
    const send = (body: Buffer) => {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(body.length),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    switch (url.pathname) {
      case '/img':
        return send(DATA);
      case '/other':
        return send(OTHER);
      case '/chunked':
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        return res.end(req.method === 'HEAD' ? undefined : DATA);
      case '/held':
        if (req.method === 'HEAD') return send(DATA);
        return void held.then(() => {
          held = new Promise<void>((r) => (release = r));
          send(DATA);
        });
      case '/reset':
        res.writeHead(200, { 'content-length': String(DATA.length) });
        if (req.method === 'HEAD') return res.end();
        res.write(DATA.subarray(0, 64 * 1024));
        return void setTimeout(() => req.socket.destroy(), 100);
      case '/redirect':
        res.writeHead(302, { location: url.searchParams.get('to')! });
        return res.end();
      default:
        res.writeHead(404);
        return res.end('not here');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    release: () => release(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function statusOf(t: TestApp, id: string, auth = ADMIN): Promise<string> {
  const res = await request(t.http).head(`/v1/images/${id}`).set(auth);
  return res.status === 200
    ? String(res.headers['x-image-meta-status'])
    : `HTTP ${res.status}`;
}

async function awaitStatus(
  t: TestApp,
  id: string,
  expected: string,
): Promise<void> {
  let last = '';
  await waitFor(
    async () => (last = await statusOf(t, id)) === expected,
    `image ${id} to become ${expected} (last: ${last})`,
    10_000,
  );
}

async function download(t: TestApp, id: string) {
  return request(t.http)
    .get(`/v1/images/${id}`)
    .buffer(true)
    .parse(binaryParser);
}

async function imageCount(t: TestApp): Promise<number> {
  const res = await request(t.http).get(
    '/v1/images/detail?is_public=None&limit=1000',
  );
  expect(res.status).toBe(200);
  return res.body.images.length;
}

/** Fails when a response shows `secrets` in its status line, headers or body. */
function expectHidden(res: request.Response, ...secrets: string[]): void {
  const seen = `${res.text ?? ''}\n${JSON.stringify(res.body ?? null)}\n${JSON.stringify(res.headers)}`;
  for (const secret of secrets) expect(seen).not.toContain(secret);
  expect(res.headers['x-image-meta-location']).toBeUndefined();
}

describe('external image sources (EXTERNAL_SOURCE_ALLOWLIST=127.0.0.1/32)', () => {
  let t: TestApp;
  let src: SourceServer;
  /** Listens on 127.0.0.2 only: loopback, but not on the allowlist. */
  let internal: SourceServer;
  let base: string;

  beforeAll(async () => {
    t = await createTestApp({ EXTERNAL_SOURCE_ALLOWLIST: '127.0.0.1/32' });
    src = await startSourceServer('127.0.0.1');
    internal = await startSourceServer('127.0.0.2');
    base = `http://127.0.0.1:${src.port}`;
  });
  afterAll(async () => {
    await t?.close();
    await src?.close();
    await internal?.close();
  });

  const post = (headers: Record<string, string>) =>
    request(t.http).post('/v1/images').set(metaHeaders()).set(headers);

  describe('x-image-meta-location (scenario 3)', () => {
    it('registers the remote image as active, sized from its Content-Length, and never shows the URL', async () => {
      const url = `${base}/img`;
      const res = await post({ 'x-image-meta-location': url });
      expect(res.status).toBe(201);
      expect(res.body.image).toMatchObject({
        status: 'active',
        size: DATA.length,
      });
      expectHidden(res, url, `:${src.port}`);

      const id = res.body.image.id;
      for (const shown of [
        await request(t.http).head(`/v1/images/${id}`),
        await request(t.http).get('/v1/images/detail'),
        await request(t.http).get('/v1/images'),
        await request(t.http)
          .put(`/v1/images/${id}`)
          .set('x-image-meta-property-a', 'b'),
      ]) {
        expect(shown.status).toBe(200);
        expectHidden(shown, url, `:${src.port}`);
      }
    });

    it('streams the remote bytes on GET', async () => {
      const created = await post({ 'x-image-meta-location': `${base}/img` });
      const before = src.requests.length;
      const res = await download(t, created.body.image.id);
      expect(res.status).toBe(200);
      expect(res.headers['content-length']).toBe(String(DATA.length));
      expect((res.body as Buffer).equals(DATA)).toBe(true);
      expect(src.requests.slice(before)).toEqual([
        expect.objectContaining({ method: 'GET', url: '/img' }),
      ]);
      expectHidden(res, `${base}/img`);
    });

    it('accepts a provided size that matches the remote one', async () => {
      const res = await post({
        'x-image-meta-location': `${base}/img`,
        'x-image-meta-size': String(DATA.length),
      });
      expect(res.status).toBe(201);
      expect(res.body.image).toMatchObject({
        status: 'active',
        size: DATA.length,
      });
    });

    it('answers 409 when the provided size differs from the remote size', async () => {
      const res = await post({
        'x-image-meta-location': `${base}/img`,
        'x-image-meta-size': String(DATA.length + 1),
      });
      expect(res.status).toBe(409);
      expect(res.text).toContain(
        `Provided image size must match the stored image size. (provided size: ${DATA.length + 1}, stored size: ${DATA.length})`,
      );
      expectHidden(res, `${base}/img`);
    });

    it('sends the URL credentials to the remote server but never shows them', async () => {
      const url = `http://glanceuser:${PASSWORD}@127.0.0.1:${src.port}/img?sig=${TOKEN}`;
      const res = await post({ 'x-image-meta-location': url });
      expect(res.status).toBe(201);
      expectHidden(res, PASSWORD, TOKEN);
      const id = res.body.image.id;
      const before = src.requests.length;
      const got = await download(t, id);
      expect((got.body as Buffer).equals(DATA)).toBe(true);
      expectHidden(got, PASSWORD, TOKEN);
      expect(src.requests.slice(before)[0]).toEqual({
        method: 'GET',
        url: `/img?sig=${TOKEN}`,
        authorization: `Basic ${Buffer.from(`glanceuser:${PASSWORD}`).toString('base64')}`,
      });
      for (const shown of [
        await request(t.http).head(`/v1/images/${id}`),
        await request(t.http).get('/v1/images/detail'),
      ]) {
        expectHidden(shown, PASSWORD, TOKEN);
      }
    });

    it.each([
      ['missing remote image (400)', `/missing?sig=${TOKEN}`, {}, 400],
      [
        'size mismatch (409)',
        `/img?sig=${TOKEN}`,
        { 'x-image-meta-size': '5' },
        409,
      ],
    ])(
      'keeps URL credentials out of errors: %s',
      async (_label, path, extra, status) => {
        const url = `http://glanceuser:${PASSWORD}@127.0.0.1:${src.port}${path}`;
        const res = await post({ 'x-image-meta-location': url, ...extra });
        expect(res.status).toBe(status);
        expectHidden(res, PASSWORD, TOKEN);
      },
    );

    it.each([
      'file:///etc/passwd',
      'ftp://127.0.0.1/img',
      `ftp://glanceuser:${PASSWORD}@127.0.0.1/img`,
      'swift://account:key@127.0.0.1/container/object',
      's3://key:secret@127.0.0.1/bucket/object',
      'not a url',
      `http://glanceuser:${PASSWORD}@[bad`,
      'http://',
    ])('refuses the location %s with 400 and creates nothing', async (url) => {
      const count = await imageCount(t);
      const res = await post({ 'x-image-meta-location': url });
      expect(res.status).toBe(400);
      expectHidden(res, PASSWORD);
      expect(await imageCount(t)).toBe(count);
    });

    it('refuses file:// as a copy-from source too', async () => {
      const res = await post({
        'x-glance-api-copy-from': 'file:///etc/passwd',
      });
      expect(res.status).toBe(400);
      expect(res.text).toContain('External sourcing not supported');
    });

    it('answers 400 for a remote image that does not exist, and creates nothing', async () => {
      const count = await imageCount(t);
      const res = await post({ 'x-image-meta-location': `${base}/missing` });
      expect(res.status).toBe(400);
      // The caller's own URL may be echoed, without credentials or query.
      expect(res.text).toContain(`External source ${base}/missing not found`);
      expect(await imageCount(t)).toBe(count);
    });

    it('answers 400 without the URL for a location whose host refuses the connection, and creates nothing', async () => {
      const refused = `http://127.0.0.1:${await closedPort()}/img`;
      const count = await imageCount(t);
      for (const headers of [
        { 'x-image-meta-location': refused } as Record<string, string>,
        {
          'x-image-meta-location': refused,
          'x-image-meta-size': String(DATA.length),
        },
      ]) {
        const res = await post(headers);
        expect(res.status).toBe(400);
        expect(res.text).toContain(
          'The image location could not be read (ECONNREFUSED)',
        );
        expectHidden(res, refused.slice('http://'.length));
      }
      expect(await imageCount(t)).toBe(count);
    });

    it('answers 400 for a refused location on PUT and leaves the queued image as it was', async () => {
      const refused = `http://127.0.0.1:${await closedPort()}/img`;
      const image = await createImage(t, { name: 'reserved-refused' });
      for (const headers of [
        { 'x-image-meta-location': refused } as Record<string, string>,
        {
          'x-image-meta-location': refused,
          'x-image-meta-size': String(DATA.length),
        },
      ]) {
        const res = await request(t.http)
          .put(`/v1/images/${image.id}`)
          .set('x-image-meta-name', 'renamed')
          .set(headers);
        expect(res.status).toBe(400);
        expect(res.text).toContain(
          'The image location could not be read (ECONNREFUSED)',
        );
        expectHidden(res, refused.slice('http://'.length));
      }
      const head = await request(t.http).head(`/v1/images/${image.id}`);
      expect(head.headers).toMatchObject({
        'x-image-meta-status': 'queued',
        'x-image-meta-name': 'reserved-refused',
        'x-image-meta-size': '0',
      });
      // Still usable: a working location activates it.
      const ok = await request(t.http)
        .put(`/v1/images/${image.id}`)
        .set('x-image-meta-location', `${base}/other`);
      expect(ok.body.image).toMatchObject({
        status: 'active',
        size: OTHER.length,
      });
    });

    it('leaves the remote image alone on DELETE', async () => {
      const created = await post({ 'x-image-meta-location': `${base}/img` });
      const before = src.requests.length;
      const res = await request(t.http).delete(
        `/v1/images/${created.body.image.id}`,
      );
      expect(res.status).toBe(200);
      expect(src.requests.slice(before)).toEqual([]);
      expect(await statusOf(t, created.body.image.id)).toBe('deleted');
      const direct = await fetch(`${base}/img`);
      expect(Buffer.from(await direct.arrayBuffer()).equals(DATA)).toBe(true);
    });

    it('refuses a location for an image that is already active', async () => {
      const image = await createImage(t, { data: Buffer.from('mine') });
      const before = src.requests.length;
      const res = await request(t.http)
        .put(`/v1/images/${image.id}`)
        .set('x-image-meta-location', `${base}/img`);
      expect(res.status).toBe(400);
      expect(res.text).toContain(
        'Attempted to update Location field for an image not in queued status.',
      );
      expect(src.requests.length).toBe(before);
      expect(((await download(t, image.id)).body as Buffer).toString()).toBe(
        'mine',
      );
    });

    it('registers a location on PUT of a queued image', async () => {
      const image = await createImage(t, { name: 'reserved' });
      const res = await request(t.http)
        .put(`/v1/images/${image.id}`)
        .set('x-image-meta-location', `${base}/other`);
      expect(res.status).toBe(200);
      expect(res.body.image).toMatchObject({
        status: 'active',
        size: OTHER.length,
      });
      expectHidden(res, `${base}/other`);
      expect(((await download(t, image.id)).body as Buffer).equals(OTHER)).toBe(
        true,
      );
    });
  });

  describe('x-glance-api-copy-from (scenario 2)', () => {
    it('answers at once with a queued image, then copies the bytes into the file store', async () => {
      const url = `${base}/held`;
      const res = await post({ 'x-glance-api-copy-from': url });
      // The remote server has not answered yet: the copy runs after the response.
      expect(res.status).toBe(201);
      expect(res.body.image).toMatchObject({ status: 'queued' });
      expectHidden(res, url, `:${src.port}`);
      const id = res.body.image.id;
      src.release();
      await awaitStatus(t, id, 'active');

      const head = await request(t.http).head(`/v1/images/${id}`);
      expect(head.headers['x-image-meta-checksum']).toBe(md5(DATA));
      expect(head.headers['x-image-meta-size']).toBe(String(DATA.length));
      expectHidden(head, url);
      expect(storeFilesOf(t, id)).toEqual([id]);

      const before = src.requests.length;
      const got = await download(t, id);
      expect((got.body as Buffer).equals(DATA)).toBe(true);
      expect(src.requests.length).toBe(before);
    });

    it('copies a source that sends no Content-Length', async () => {
      const res = await post({ 'x-glance-api-copy-from': `${base}/chunked` });
      expect(res.status).toBe(201);
      await awaitStatus(t, res.body.image.id, 'active');
      const head = await request(t.http).head(
        `/v1/images/${res.body.image.id}`,
      );
      expect(head.headers['x-image-meta-size']).toBe(String(DATA.length));
      expect(head.headers['x-image-meta-checksum']).toBe(md5(DATA));
    });

    it('kills the image when the checksum given does not match the copied bytes', async () => {
      const res = await post({
        'x-glance-api-copy-from': `${base}/img`,
        'x-image-meta-checksum': md5(OTHER),
      });
      expect(res.status).toBe(201);
      await awaitStatus(t, res.body.image.id, 'killed');
      expect(storeFilesOf(t, res.body.image.id)).toEqual([]);
    });

    it.each([
      ['the remote image is missing (404)', async () => `${base}/missing`],
      [
        'the remote server is down',
        async () => `http://127.0.0.1:${await closedPort()}/img`,
      ],
      ['the connection is reset mid-body', async () => `${base}/reset`],
    ])('ends killed with no data left when %s', async (_label, urlOf) => {
      const url = await urlOf();
      const res = await post({ 'x-glance-api-copy-from': url });
      expect(res.status).toBe(201);
      expect(res.body.image.status).toBe('queued');
      const id = res.body.image.id;
      await awaitStatus(t, id, 'killed');
      expect(storeFilesOf(t, id)).toEqual([]);
      expect(storeFiles(t).filter((f) => f.endsWith('.part'))).toEqual([]);
      expect((await download(t, id)).status).toBe(404);
      expectHidden(await request(t.http).head(`/v1/images/${id}`), url);
    });

    it('keeps URL credentials out of a failed copy', async () => {
      const url = `http://glanceuser:${PASSWORD}@127.0.0.1:${src.port}/missing?sig=${TOKEN}`;
      const res = await post({ 'x-glance-api-copy-from': url });
      expect(res.status).toBe(201);
      expectHidden(res, PASSWORD, TOKEN);
      await awaitStatus(t, res.body.image.id, 'killed');
      expectHidden(
        await request(t.http).head(`/v1/images/${res.body.image.id}`),
        PASSWORD,
        TOKEN,
      );
    });

    it('copies on PUT of a queued image', async () => {
      const image = await createImage(t, { name: 'copy-later' });
      const res = await request(t.http)
        .put(`/v1/images/${image.id}`)
        .set('x-glance-api-copy-from', `${base}/other`);
      expect(res.status).toBe(200);
      expect(res.body.image.status).toBe('queued');
      await awaitStatus(t, image.id, 'active');
      const got = await download(t, image.id);
      expect((got.body as Buffer).equals(OTHER)).toBe(true);
      expect(got.headers['x-image-meta-checksum']).toBe(md5(OTHER));
    });

    it('refuses a copy onto an active image with 400', async () => {
      const image = await createImage(t, { data: Buffer.from('already here') });
      const before = src.requests.length;
      const res = await request(t.http)
        .put(`/v1/images/${image.id}`)
        .set('x-glance-api-copy-from', `${base}/other`);
      expect(res.status).toBe(400);
      expect(src.requests.length).toBe(before);
      expect(((await download(t, image.id)).body as Buffer).toString()).toBe(
        'already here',
      );
    });
  });

  describe('more than one source', () => {
    it.each([
      ['location + copy-from', { location: true, copyFrom: true, body: false }],
      ['location + body', { location: true, copyFrom: false, body: true }],
      ['copy-from + body', { location: false, copyFrom: true, body: true }],
    ])('refuses %s with 400, fetching nothing', async (_label, sources) => {
      const count = await imageCount(t);
      const before = src.requests.length;
      const headers: Record<string, string> = {};
      if (sources.location) headers['x-image-meta-location'] = `${base}/img`;
      if (sources.copyFrom) headers['x-glance-api-copy-from'] = `${base}/other`;
      let req = post(headers);
      if (sources.body)
        req = req.set('content-type', 'application/octet-stream').send(DATA);
      const res = await req;
      expect(res.status).toBe(400);
      expect(res.text).toContain(
        "It's invalid to provide multiple image sources.",
      );
      expect(src.requests.length).toBe(before);
      expect(await imageCount(t)).toBe(count);
    });
  });

  describe('redirects', () => {
    it('does not forward URL credentials to another origin', async () => {
      const second = await startSourceServer('127.0.0.1');
      try {
        const to = encodeURIComponent(`http://127.0.0.1:${second.port}/img`);
        const url = `http://glanceuser:${PASSWORD}@127.0.0.1:${src.port}/redirect?to=${to}`;
        const res = await post({ 'x-image-meta-location': url });
        expect(res.status).toBe(201);
        expect(res.body.image.size).toBe(DATA.length);
        expect(second.requests.length).toBeGreaterThan(0);
        expect(second.requests.map((r) => r.authorization)).toEqual(
          second.requests.map(() => undefined),
        );
      } finally {
        await second.close();
      }
    });

    it('follows a redirect to an allowlisted address', async () => {
      const to = encodeURIComponent(`${base}/other`);
      const res = await post({
        'x-image-meta-location': `${base}/redirect?to=${to}`,
      });
      expect(res.status).toBe(201);
      expect(res.body.image.size).toBe(OTHER.length);
      expect(
        ((await download(t, res.body.image.id)).body as Buffer).equals(OTHER),
      ).toBe(true);
    });

    it.each([
      [
        'a loopback address off the allowlist',
        () => `http://127.0.0.2:${internal.port}/img`,
      ],
      [
        'the metadata service',
        () => 'http://169.254.169.254/latest/meta-data/',
      ],
    ])(
      'refuses a redirect to %s: location 400, copy-from killed',
      async (_label, target) => {
        const url = `${base}/redirect?to=${encodeURIComponent(target())}`;
        const location = await post({ 'x-image-meta-location': url });
        expect(location.status).toBe(400);
        expect(location.text).toContain('internal or reserved destination');

        const copy = await post({ 'x-glance-api-copy-from': url });
        expect(copy.status).toBe(201);
        await awaitStatus(t, copy.body.image.id, 'killed');
        expect(storeFilesOf(t, copy.body.image.id)).toEqual([]);
        expect(internal.requests).toEqual([]);
      },
    );
  });
});

describe('external sources without an allowlist (SSRF guard)', () => {
  let t: TestApp;
  /** Listens on every loopback address, IPv4 and IPv6. */
  let target: SourceServer;

  /** A name other than localhost that resolves to loopback (the machine's own name, via /etc/hosts), if any. */
  let loopbackName: string | null = null;

  beforeAll(async () => {
    t = await createTestApp();
    target = await startSourceServer('::');
    const name = hostname();
    const addresses = await lookup(name, { all: true }).catch(() => []);
    if (
      addresses.length > 0 &&
      addresses.every((a) => /^127\.|^::1$/.test(a.address))
    ) {
      loopbackName = name;
    }
  });
  afterAll(async () => {
    await t?.close();
    await target?.close();
  });

  const internalUrls = () => [
    `http://127.0.0.1:${target.port}/img`,
    `http://localhost:${target.port}/img`,
    `http://LocalHost.:${target.port}/img`,
    `http://2130706433:${target.port}/img`,
    `http://0x7f000001:${target.port}/img`,
    `http://0177.0.0.1:${target.port}/img`,
    `http://127.1:${target.port}/img`,
    `http://[::1]:${target.port}/img`,
    `http://[::ffff:127.0.0.1]:${target.port}/img`,
    `http://127.0.0.2:${target.port}/img`,
    `http://glanceuser:${PASSWORD}@127.0.0.1:${target.port}/img`,
    'http://localhost/',
    'http://2130706433/',
    'http://0x7f000001/',
    'http://[::1]/',
    'http://169.254.169.254/latest/meta-data/',
    'http://10.0.0.1/',
    // Checked through the resolver: the name itself says nothing.
    ...(loopbackName ? [`http://${loopbackName}:${target.port}/img`] : []),
  ];

  it('refuses internal locations with 400 and sends them no request', async () => {
    for (const url of internalUrls()) {
      const res = await request(t.http)
        .post('/v1/images')
        .set(metaHeaders())
        .set('x-image-meta-location', url);
      expect({ url, status: res.status }).toEqual({ url, status: 400 });
      expectHidden(res, PASSWORD);
    }
    expect(target.requests).toEqual([]);
  });

  it('refuses internal copy-from sources with 400 and sends them no request', async () => {
    for (const url of internalUrls()) {
      const res = await request(t.http)
        .post('/v1/images')
        .set(metaHeaders())
        .set('x-glance-api-copy-from', url);
      expect({ url, status: res.status }).toEqual({ url, status: 400 });
      expectHidden(res, PASSWORD);
    }
    expect(target.requests).toEqual([]);
  });

  it('refuses internal sources on PUT and leaves the image queued', async () => {
    const image = await createImage(t, { name: 'ssrf-put' });
    for (const header of ['x-image-meta-location', 'x-glance-api-copy-from']) {
      const res = await request(t.http)
        .put(`/v1/images/${image.id}`)
        .set(header, `http://127.0.0.1:${target.port}/img`);
      expect(res.status).toBe(400);
    }
    expect(await statusOf(t, image.id)).toBe('queued');
    expect(target.requests).toEqual([]);
  });
});

describe('delayed delete (DELAYED_DELETE=true, SCRUB_TIME=1)', () => {
  let t: TestApp;
  let src: SourceServer;
  const owner = as('alice');

  beforeAll(async () => {
    t = await createTestApp({
      DELAYED_DELETE: 'true',
      SCRUB_TIME: '1',
      EXTERNAL_SOURCE_ALLOWLIST: '127.0.0.1/32',
    });
    src = await startSourceServer('127.0.0.1');
  });
  afterAll(async () => {
    await t?.close();
    await src?.close();
  });

  /** When the image was deleted, as the admin sees it (Glance's UTC timestamps carry no zone). */
  async function deletedAt(id: string): Promise<number> {
    const head = await request(t.http).head(`/v1/images/${id}`).set(ADMIN);
    const value = String(head.headers['x-image-meta-deleted_at']);
    const time = Date.parse(`${value}Z`);
    if (Number.isNaN(time)) throw new Error(`Unreadable deleted_at: ${value}`);
    return time;
  }

  it('keeps the data as pending_delete until the scrubber removes it after SCRUB_TIME', async () => {
    const data = Buffer.from('bytes kept a little longer');
    const image = await createImage(t, { data }, owner);
    expect(
      (await request(t.http).delete(`/v1/images/${image.id}`).set(owner))
        .status,
    ).toBe(200);

    const head = await request(t.http)
      .head(`/v1/images/${image.id}`)
      .set(ADMIN);
    expect(head.status).toBe(200);
    expect(head.headers['x-image-meta-status']).toBe('pending_delete');
    expect(head.headers['x-image-meta-deleted']).toBe('True');
    expect(storeFilesOf(t, image.id)).toEqual([image.id]);
    expect(
      (await request(t.http).head(`/v1/images/${image.id}`).set(owner)).status,
    ).toBe(404);
    expect(
      (await request(t.http).delete(`/v1/images/${image.id}`).set(owner))
        .status,
    ).toBe(404);
    const again = await request(t.http)
      .delete(`/v1/images/${image.id}`)
      .set(ADMIN);
    expect(again.status).toBe(403);
    expect(again.text).toContain('Forbidden to delete a pending_delete image.');

    const scrubber = t.app.get(ScrubberService);
    // Not due yet: half of SCRUB_TIME after the delete.
    expect(
      await scrubber.scrubOnce(new Date((await deletedAt(image.id)) + 500)),
    ).toBe(0);
    expect(storeFilesOf(t, image.id)).toEqual([image.id]);

    await new Promise((r) => setTimeout(r, 1100));
    expect(await scrubber.scrubOnce()).toBe(1);
    expect(await statusOf(t, image.id)).toBe('deleted');
    expect(storeFilesOf(t, image.id)).toEqual([]);
    expect(await scrubber.scrubOnce()).toBe(0);
    expect(
      (await request(t.http).delete(`/v1/images/${image.id}`).set(ADMIN))
        .status,
    ).toBe(404);
  });

  it('scrubs an external location without touching the remote server', async () => {
    const created = await request(t.http)
      .post('/v1/images')
      .set(owner)
      .set(metaHeaders())
      .set('x-image-meta-location', `http://127.0.0.1:${src.port}/img`);
    expect(created.status).toBe(201);
    const id = created.body.image.id;
    const before = src.requests.length;
    expect(
      (await request(t.http).delete(`/v1/images/${id}`).set(owner)).status,
    ).toBe(200);
    expect(await statusOf(t, id)).toBe('pending_delete');

    const due = new Date((await deletedAt(id)) + 1500);
    expect(await t.app.get(ScrubberService).scrubOnce(due)).toBe(1);
    expect(await statusOf(t, id)).toBe('deleted');
    expect(src.requests.slice(before)).toEqual([]);
  });

  it('deletes an image that has no data at once', async () => {
    const image = await createImage(t, { name: 'never-uploaded' }, owner);
    expect(
      (await request(t.http).delete(`/v1/images/${image.id}`).set(owner))
        .status,
    ).toBe(200);
    expect(await statusOf(t, image.id)).toBe('deleted');
  });

  it('scrubs only the images deleted more than SCRUB_TIME ago', async () => {
    const first = await createImage(t, { data: Buffer.from('one') }, owner);
    await request(t.http)
      .delete(`/v1/images/${first.id}`)
      .set(owner)
      .expect(200);
    await new Promise((r) => setTimeout(r, 1100));
    const second = await createImage(t, { data: Buffer.from('two') }, owner);
    await request(t.http)
      .delete(`/v1/images/${second.id}`)
      .set(owner)
      .expect(200);

    // SCRUB_TIME has passed for the first image only.
    const now = new Date((await deletedAt(second.id)) + 500);
    expect(await t.app.get(ScrubberService).scrubOnce(now)).toBe(1);
    expect(await statusOf(t, first.id)).toBe('deleted');
    expect(await statusOf(t, second.id)).toBe('pending_delete');
    expect(storeFilesOf(t, first.id)).toEqual([]);
    expect(storeFilesOf(t, second.id)).toEqual([second.id]);
  });
});
