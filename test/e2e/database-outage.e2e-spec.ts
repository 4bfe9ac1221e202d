import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/** A TCP proxy in front of PostgreSQL that the test can cut and restore. */
function startProxy(target: { host: string; port: number }) {
  const sockets = new Set<net.Socket>();
  let down = false;
  const server = net.createServer((client) => {
    if (down) return client.destroy();
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  return {
    listen: () =>
      new Promise<number>((resolve) =>
        server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)),
      ),
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore() {
      down = false;
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

// Fault injection: the registry database goes away under a running service.
describe('database outage', () => {
  let db: TestDatabase;
  let t: TestApp;
  let proxy: ReturnType<typeof startProxy>;
  const dir = mkdtempSync(join(tmpdir(), 'glance-outage-'));

  beforeAll(async () => {
    db = await createTestDatabase(dir, 'postgres');
    const url = new URL(db.url);
    proxy = startProxy({ host: url.hostname, port: Number(url.port || 5432) });
    url.port = String(await proxy.listen());
    t = await createTestApp({ DATABASE_URL: url.toString() });
  });

  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 with Retry-After while the database is unreachable, and recovers', async () => {
    expect((await request(t.http).get('/v1/images')).status).toBe(200);

    proxy.cut();
    const down = await request(t.http).get('/v1/images/detail');
    expect(down.status).toBe(503);
    expect(down.headers['retry-after']).toBeDefined();
    expect(down.text).toContain('database is unavailable');
    const health = await request(t.http).get('/healthcheck');
    expect(health.status).toBe(503);

    proxy.restore();
    let status = 0;
    for (let i = 0; i < 20 && status !== 200; i++) {
      status = (await request(t.http).get('/v1/images')).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
  });
});
