import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { StoreError, StoreErrorCode } from '../../src/stores/store.error.js';
import { SwiftStore } from '../../src/stores/swift.store.js';
import { describeStoreContract, expectCode } from './store-contract.js';

const missing = ['SWIFT_AUTH_URL', 'SWIFT_USER', 'SWIFT_KEY'].filter(
  (name) => !process.env[name],
);
if (missing.length > 0) {
  throw new Error(
    `${missing.join(', ')} not set: start Swift with ` +
      '`bash shared/services/swift-saio.sh start` and load its env ' +
      '(`set -a; . /tmp/swift-saio/env; set +a`) before running these tests',
  );
}
const authUrl = process.env.SWIFT_AUTH_URL!;
const user = process.env.SWIFT_USER!;
const key = process.env.SWIFT_KEY!;
const MiB = 1024 * 1024;

/** Plain Swift API access for the tests, independent of the store under test. */
async function swiftAuth(): Promise<{ token: string; storageUrl: string }> {
  const res = await fetch(authUrl, {
    headers: { 'x-auth-user': user, 'x-auth-key': key },
  });
  expect(res.status).toBe(200);
  return {
    token: res.headers.get('x-auth-token')!,
    storageUrl: res.headers.get('x-storage-url')!,
  };
}

async function listContainer(container: string): Promise<string[]> {
  const { token, storageUrl } = await swiftAuth();
  const res = await fetch(`${storageUrl}/${container}?format=json`, {
    headers: { 'x-auth-token': token },
  });
  if (res.status === 404) return [];
  expect(res.status).toBe(200);
  return ((await res.json()) as { name: string }[]).map((o) => o.name);
}

describeStoreContract('swift', async () => {
  const container = `glance-test-${randomUUID().slice(0, 8)}`;
  const store = new SwiftStore({
    authUrl,
    user,
    key,
    container,
    largeObjectSize: 16 * MiB,
    largeObjectChunkSize: 8 * MiB,
  });
  return {
    store,
    listObjects: () => listContainer(container),
    cleanup: async () => {
      for (const name of await listContainer(container)) {
        await store.delete(`swift://${container}/${encodeURIComponent(name)}`);
      }
      const { token, storageUrl } = await swiftAuth();
      const res = await fetch(`${storageUrl}/${container}`, {
        method: 'DELETE',
        headers: { 'x-auth-token': token },
      });
      expect([204, 404]).toContain(res.status);
    },
  };
});

describe('SwiftStore', () => {
  it('authenticates again once when its cached token is refused', async () => {
    const container = `glance-test-${randomUUID().slice(0, 8)}`;
    const store = new SwiftStore({ authUrl, user, key, container });
    await store.check();
    const { storageUrl } = await swiftAuth();
    // Stand-in for a token that expired in Swift since it was cached.
    Object.assign(store, {
      auth: Promise.resolve({ token: 'AUTH_tkexpired', storageUrl }),
    });
    const stored = await store.add('one', Readable.from([Buffer.from('abc')]), {
      expectedSize: 3,
    });
    expect(await store.getSize(stored.location)).toBe(3);
    await store.delete(stored.location);
    const { token } = await swiftAuth();
    await fetch(`${storageUrl}/${container}`, {
      method: 'DELETE',
      headers: { 'x-auth-token': token },
    });
  });

  it('reports a missing container as UNAVAILABLE when it may not create it', async () => {
    const store = new SwiftStore({
      authUrl,
      user,
      key,
      container: `glance-missing-${randomUUID().slice(0, 8)}`,
      createContainer: false,
    });
    const data = Readable.from([Buffer.from('abc')]);
    await expectCode(
      store.add('x', data, { expectedSize: 3 }),
      StoreErrorCode.Unavailable,
    );
    await expect(store.check()).rejects.toBeInstanceOf(StoreError);
  });

  it('answers WRITE_DENIED when Swift refuses the credentials', async () => {
    const store = new SwiftStore({
      authUrl,
      user,
      key: 'wrong-key',
      container: 'never-created',
    });
    await expectCode(store.check(), StoreErrorCode.WriteDenied);
    const data = Readable.from([Buffer.from('abc')]);
    await expectCode(
      store.add('x', data, { expectedSize: 3 }),
      StoreErrorCode.WriteDenied,
    );
  });

  it('fails fast with UNAVAILABLE when Swift cannot be reached', async () => {
    const store = new SwiftStore({
      authUrl: 'http://127.0.0.1:1/auth/v1.0',
      user,
      key,
      container: 'unreachable',
      requestTimeoutMs: 2000,
    });
    const started = Date.now();
    const data = Readable.from([Buffer.from('abc')]);
    await expectCode(
      store.add('x', data, { expectedSize: 3 }),
      StoreErrorCode.Unavailable,
    );
    await expectCode(store.check(), StoreErrorCode.Unavailable);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
