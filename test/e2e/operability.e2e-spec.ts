import type { Request, Response } from 'express';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contextOf } from '../../src/common/request-context.accessor.js';
import { PinoLogger } from '../../src/logging/pino.logger.js';
import {
  REQUEST_ID_PATTERN,
  setRequestId,
} from '../../src/logging/request-id.js';
import { AuthMiddleware } from '../../src/policy/auth.middleware.js';
import { waitFor } from '../support/image-assertions.js';
import { createImage, metaHeaders } from '../support/image-builder.js';
import { createTestApp, type TestApp } from '../support/test-app.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Samples of a Prometheus text exposition (enough of the format for these metrics). */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`Unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[k] = v;
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

function sample(
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return samples.find(
    (s) =>
      s.name === name &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value;
}

async function scrape(t: TestApp): Promise<Sample[]> {
  const res = await request(t.http).get('/metrics');
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseMetrics(res.text);
}

/** supertest body parser collecting the raw bytes (its type says Response; it is the stream). */
function binary(
  res: request.Response,
  done: (err: Error | null, body: Buffer) => void,
): void {
  const chunks: Buffer[] = [];
  const stream = res as unknown as NodeJS.ReadableStream;
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => done(null, Buffer.concat(chunks)));
}

const WELL_FORMED = 'req-0123abcd-4567-89ab-cdef-0123456789ab';

describe('healthcheck', () => {
  let t: TestApp;
  beforeAll(async () => {
    // trusted-headers refuses unauthenticated API calls: the healthcheck must not care.
    t = await createTestApp({ AUTH_STRATEGY: 'trusted-headers' });
  });
  afterAll(async () => t.close());

  it('answers 200 OK in plain text, without credentials, on GET and HEAD', async () => {
    expect((await request(t.http).get('/v1/images')).status).toBe(401);
    const res = await request(t.http).get('/healthcheck');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toBe('OK');
    const head = await request(t.http).head('/healthcheck');
    expect(head.status).toBe(200);
    expect(head.text ?? '').toBe('');
  });

  it('answers 503 naming the store while the store directory is gone, 200 again once it is back', async () => {
    rmSync(t.storeDir, { recursive: true, force: true });
    try {
      const res = await request(t.http).get('/healthcheck');
      expect(res.status).toBe(503);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.text).toMatch(/^store: .+/);
      expect(res.text).not.toMatch(/database/);
      expect((await request(t.http).head('/healthcheck')).status).toBe(503);
    } finally {
      mkdirSync(t.storeDir, { recursive: true });
    }
    const again = await request(t.http).get('/healthcheck');
    expect(again.status).toBe(200);
    expect(again.text).toBe('OK');
  });
});

describe('healthcheck with the database closed', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  it('answers 503 naming the database', async () => {
    expect((await request(t.http).get('/healthcheck')).status).toBe(200);
    await t.app.get(DataSource).destroy();
    const res = await request(t.http).get('/healthcheck');
    expect(res.status).toBe(503);
    expect(res.text).toMatch(/^database: .+/);
    expect(res.text).not.toMatch(/store/);
  });
});

describe('metrics', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  it('counts requests by route pattern, image bytes and images by status', async () => {
    const data = Buffer.from('0123456789abcdef0123');
    const active = await createImage(t, { data, is_public: true });
    await createImage(t, { name: 'reserved' });
    const dl = await request(t.http)
      .get(`/v1/images/${active.id}`)
      .buffer(true)
      .parse(binary);
    expect(dl.status).toBe(200);
    expect(Buffer.compare(dl.body as Buffer, data)).toBe(0);
    expect((await request(t.http).head(`/v1/images/${active.id}`)).status).toBe(
      200,
    );
    expect((await request(t.http).get('/v1/images/detail')).status).toBe(200);
    expect((await request(t.http).get('/v1/images/no-such-image')).status).toBe(
      404,
    );
    expect((await request(t.http).get('/v1/nothing-here')).status).toBe(404);

    const samples = await scrape(t);
    const requests = (labels: Record<string, string>) =>
      sample(samples, 'http_requests_total', labels);
    expect(
      requests({ method: 'POST', route: '/v1/images', status: '201' }),
    ).toBe(2);
    expect(
      requests({ method: 'GET', route: '/v1/images/:id', status: '200' }),
    ).toBe(1);
    expect(
      requests({ method: 'GET', route: '/v1/images/:id', status: '404' }),
    ).toBe(1);
    expect(
      requests({ method: 'HEAD', route: '/v1/images/:id', status: '200' }),
    ).toBe(1);
    expect(
      requests({ method: 'GET', route: '/v1/images/detail', status: '200' }),
    ).toBe(1);
    expect(requests({ method: 'GET', route: 'unmatched', status: '404' })).toBe(
      1,
    );
    expect(
      sample(samples, 'http_request_duration_seconds_count', {
        method: 'GET',
        route: '/v1/images/:id',
        status: '200',
      }),
    ).toBe(1);
    expect(
      sample(samples, 'http_request_duration_seconds_bucket', {
        method: 'POST',
        route: '/v1/images',
        status: '201',
        le: '+Inf',
      }),
    ).toBe(2);
    // Routes are patterns: no raw URL (with an id) ever becomes a label.
    const routes = new Set(
      samples.filter((s) => s.labels.route).map((s) => s.labels.route),
    );
    for (const route of routes)
      expect(route === 'unmatched' || route.startsWith('/')).toBe(true);
    expect(
      [...routes].some(
        (r) => r.includes(active.id) || r.includes('no-such-image'),
      ),
    ).toBe(false);

    expect(sample(samples, 'glance_image_bytes_uploaded_total')).toBe(
      data.length,
    );
    expect(sample(samples, 'glance_image_bytes_downloaded_total')).toBe(
      data.length,
    );
    expect(sample(samples, 'glance_images', { status: 'active' })).toBe(1);
    expect(sample(samples, 'glance_images', { status: 'queued' })).toBe(1);
    expect(sample(samples, 'glance_notification_queue_depth')).toBe(0);
    expect(sample(samples, 'glance_notifications_dropped_total')).toBe(0);
    expect(sample(samples, 'process_cpu_user_seconds_total')).toBeGreaterThan(
      0,
    );

    // The first scrape itself is counted by the next one.
    const next = await scrape(t);
    expect(
      sample(next, 'http_requests_total', {
        method: 'GET',
        route: '/metrics',
        status: '200',
      }),
    ).toBe(1);
  });
});

describe('request id', () => {
  let t: TestApp;
  let lines: Record<string, unknown>[];
  /** An app configured with LOG_LEVEL whose log lines (at 'log' and above) land in `into`. */
  async function appLoggingTo(
    level: string,
    into: Record<string, unknown>[],
  ): Promise<TestApp> {
    const app = await createTestApp({ LOG_LEVEL: level });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n'))
          if (line) into.push(JSON.parse(line));
        done();
      },
    });
    app.app.useLogger(new PinoLogger({ level: 'log', destination: sink }));
    return app;
  }

  beforeAll(async () => {
    lines = [];
    t = await appLoggingTo('log', lines);
  });
  afterAll(async () => t.close());

  it('gives every response a fresh req-<uuid> id', async () => {
    const a = await request(t.http).get('/v1/images');
    const b = await request(t.http).get('/v1/images');
    expect(a.headers['x-openstack-request-id']).toMatch(REQUEST_ID_PATTERN);
    expect(b.headers['x-openstack-request-id']).toMatch(REQUEST_ID_PATTERN);
    expect(a.headers['x-openstack-request-id']).not.toBe(
      b.headers['x-openstack-request-id'],
    );
    for (const path of ['/healthcheck', '/', '/v1/images/missing']) {
      const res = await request(t.http).get(path);
      expect(res.headers['x-openstack-request-id']).toMatch(REQUEST_ID_PATTERN);
    }
  });

  it('echoes a well-formed incoming id and replaces a malformed one', async () => {
    const ok = await request(t.http)
      .get('/v1/images')
      .set('X-OpenStack-Request-ID', WELL_FORMED);
    expect(ok.headers['x-openstack-request-id']).toBe(WELL_FORMED);
    const malformed = [
      'req-1234',
      WELL_FORMED.toUpperCase().replace('REQ', 'req'),
      `${WELL_FORMED}0`,
      WELL_FORMED.slice(4),
      'hello',
    ];
    for (const bad of malformed) {
      const res = await request(t.http)
        .get('/v1/images')
        .set('X-OpenStack-Request-ID', bad);
      expect(res.headers['x-openstack-request-id']).toMatch(REQUEST_ID_PATTERN);
      expect(res.headers['x-openstack-request-id']).not.toBe(bad);
    }
  });

  it('puts the id on the log lines of the request and on its access log line', async () => {
    const id = 'req-11111111-2222-4333-8444-555555555555';
    rmSync(t.storeDir, { recursive: true, force: true });
    try {
      const res = await request(t.http)
        .get('/healthcheck?token=secret')
        .set('X-OpenStack-Request-ID', id);
      expect(res.status).toBe(503);
    } finally {
      mkdirSync(t.storeDir, { recursive: true });
    }
    const mine = lines.filter((l) => l.request_id === id);
    const warning = mine.find((l) => l.context === 'Healthcheck');
    expect(warning).toMatchObject({ level: 'warn' });
    expect(String(warning?.msg)).toMatch(/store: /);
    const access = mine.find((l) => l.context === 'AccessLog');
    expect(access).toMatchObject({
      level: 'info',
      method: 'GET',
      path: '/healthcheck',
      status: 503,
    });
    expect(access?.duration_ms).toEqual(expect.any(Number));
    expect(access?.bytes).toBeGreaterThan(0);
    expect(JSON.stringify(lines)).not.toContain('secret');
  });

  it('logs an upload whose client closed mid-body as 499 aborted, not as the status never sent', async () => {
    const server = t.http as http.Server;
    if (!server.listening)
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const id = randomUUID();
    const upload = http.request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/v1/images',
      agent: false,
      headers: {
        ...metaHeaders({ id }),
        'content-type': 'application/octet-stream',
        'x-openstack-request-id': `req-${id}`,
      },
    });
    upload.on('error', () => {});
    upload.write(Buffer.alloc(4096, 1));
    const status = async () =>
      (await request(t.http).head(`/v1/images/${id}`)).headers[
        'x-image-meta-status'
      ];
    await waitFor(
      async () => (await status()) === 'saving',
      'the upload to start',
    );
    upload.destroy();
    await waitFor(
      async () => (await status()) === 'killed',
      'the image to be killed',
    );
    await waitFor(
      () =>
        lines.some(
          (l) => l.request_id === `req-${id}` && l.context === 'AccessLog',
        ),
      'the access line',
    );
    const access = lines.find(
      (l) => l.request_id === `req-${id}` && l.context === 'AccessLog',
    );
    expect(access).toMatchObject({
      method: 'POST',
      path: '/v1/images',
      status: 499,
      aborted: true,
    });
    expect(String(access?.msg)).toMatch(/^POST \/v1\/images 499 .* aborted$/);
    // A complete response carries no aborted mark.
    const done = await request(t.http)
      .get('/v1/images')
      .set('X-OpenStack-Request-ID', `req-${randomUUID()}`);
    const line = lines.find(
      (l) =>
        l.request_id === done.headers['x-openstack-request-id'] &&
        l.context === 'AccessLog',
    );
    expect(line).toMatchObject({ status: 200 });
    expect(line).not.toHaveProperty('aborted');
  });

  it('writes no access lines when LOG_LEVEL drops info lines', async () => {
    const quiet: Record<string, unknown>[] = [];
    const warnOnly = await appLoggingTo('warn', quiet);
    try {
      const res = await request(warnOnly.http).get('/v1/images');
      expect(res.status).toBe(200);
      expect(quiet.filter((l) => l.context === 'AccessLog')).toEqual([]);
    } finally {
      await warnOnly.close();
    }
  });

  it('hands the id to the RequestContext built by the auth middleware', () => {
    const req = { headers: {} } as Request;
    setRequestId(req, WELL_FORMED);
    let error: unknown = 'not called';
    new AuthMiddleware(t.config).use(req, {} as Response, (err?: unknown) => {
      error = err;
    });
    expect(error).toBeUndefined();
    expect(contextOf(req).requestId).toBe(WELL_FORMED);
  });
});
