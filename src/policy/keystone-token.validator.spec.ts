import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  startFakeKeystone,
  type FakeKeystone,
} from '../../test/support/fake-keystone.js';
import {
  KeystoneAuthError,
  KeystoneTokenValidator,
  type KeystoneTokenValidatorOptions,
} from './keystone-token.validator.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function failure(promise: Promise<unknown>): Promise<KeystoneAuthError> {
  const err = await promise.then(
    () => {
      throw new Error('expected the validation to fail');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KeystoneAuthError);
  return err as KeystoneAuthError;
}

describe('KeystoneTokenValidator', () => {
  let keystone: FakeKeystone;

  const validator = (
    options: Partial<KeystoneTokenValidatorOptions> = {},
  ): KeystoneTokenValidator =>
    new KeystoneTokenValidator({
      url: keystone.url,
      serviceUser: 'glance',
      servicePassword: 'glance-secret',
      serviceProject: 'service',
      ...options,
    });

  beforeEach(async () => {
    keystone = await startFakeKeystone();
  });
  afterEach(async () => {
    await keystone.close();
  });

  it('returns the identity of a valid token with lowercased roles', async () => {
    const token = keystone.issueToken({
      userId: 'u1',
      userName: 'alice',
      projectId: 'p1',
      projectName: 'demo',
      roles: ['Member', 'ADMIN'],
      expiresInMs: 60_000,
    });
    const identity = await validator().validate(token);
    expect(identity).toEqual({
      userId: 'u1',
      userName: 'alice',
      projectId: 'p1',
      projectName: 'demo',
      roles: ['member', 'admin'],
      expiresAt: expect.any(Date),
    });
    expect(identity.expiresAt.getTime()).toBeGreaterThan(Date.now() + 50_000);
    expect(keystone.requests).toMatchObject({ authenticate: 1, validate: 1 });
  });

  it('accepts the URL with /v3 and a trailing slash', async () => {
    const token = keystone.issueToken({ userId: 'u2' });
    const v = validator({ url: `${keystone.url}/v3/` });
    expect((await v.validate(token)).userId).toBe('u2');
  });

  it('gives null project fields for an unscoped token', async () => {
    const token = keystone.issueToken({ projectId: null, roles: [] });
    const identity = await validator().validate(token);
    expect(identity.projectId).toBeNull();
    expect(identity.projectName).toBeNull();
    expect(identity.roles).toEqual([]);
  });

  it('serves a validated token from the cache without asking Keystone', async () => {
    const v = validator();
    const token = keystone.issueToken({ userId: 'u1' });
    await v.validate(token);
    const before = keystone.requests.total;
    const again = await v.validate(token);
    expect(again.userId).toBe('u1');
    expect(keystone.requests.total).toBe(before);
  });

  it('re-validates once the cache entry expires', async () => {
    const v = validator({ cacheTtlMs: 150 });
    const token = keystone.issueToken({ userId: 'u1' });
    await v.validate(token);
    await v.validate(token);
    expect(keystone.requests.validate).toBe(1);
    await sleep(200);
    expect((await v.validate(token)).userId).toBe('u1');
    expect(keystone.requests.validate).toBe(2);
    // The service token is still good: no second authentication.
    expect(keystone.requests.authenticate).toBe(1);
  });

  it('rejects an unknown token as invalid', async () => {
    const err = await failure(validator().validate('gAAAAnot-a-real-token'));
    expect(err.kind).toBe('invalid');
  });

  it('rejects a malformed token without asking Keystone', async () => {
    const v = validator();
    expect((await failure(v.validate(''))).kind).toBe('invalid');
    expect((await failure(v.validate('abc\r\nX-Evil: 1'))).kind).toBe(
      'invalid',
    );
    expect(keystone.requests.total).toBe(0);
  });

  it('does not cache an invalid result', async () => {
    const v = validator();
    await failure(v.validate('gAAAAunknown'));
    await failure(v.validate('gAAAAunknown'));
    expect(keystone.requests.validate).toBe(2);
  });

  it('rejects a revoked token once its cache entry expires', async () => {
    const v = validator({ cacheTtlMs: 150 });
    const token = keystone.issueToken();
    await v.validate(token);
    keystone.revoke(token);
    await v.validate(token); // still cached
    await sleep(200);
    expect((await failure(v.validate(token))).kind).toBe('invalid');
  });

  it('never caches an identity past its token expiry', async () => {
    const v = validator({ cacheTtlMs: 60_000 });
    const token = keystone.issueToken({ expiresInMs: 150 });
    await v.validate(token);
    await sleep(200);
    expect((await failure(v.validate(token))).kind).toBe('invalid');
    expect(keystone.requests.validate).toBe(2);
  });

  it('rejects a token whose expires_at has passed even if Keystone returns it', async () => {
    keystone.setAllowExpired(true);
    const token = keystone.issueToken({ expiresInMs: -1_000 });
    const err = await failure(validator().validate(token));
    expect(err.kind).toBe('invalid');
    expect(keystone.requests.validate).toBe(1);
  });

  it('reports unavailable quickly when nothing listens on the port', async () => {
    const v = validator();
    await keystone.close();
    const started = Date.now();
    const err = await failure(v.validate('gAAAAsome-token'));
    expect(err.kind).toBe('unavailable');
    expect(Date.now() - started).toBeLessThan(1_000);
    keystone = await startFakeKeystone(); // for afterEach
  });

  it('reports unavailable on a 5xx, and recovers without caching it', async () => {
    const v = validator();
    const token = keystone.issueToken({ userId: 'u1' });
    keystone.setDown(true);
    expect((await failure(v.validate(token))).kind).toBe('unavailable');
    keystone.setDown(false);
    expect((await v.validate(token)).userId).toBe('u1');
  });

  it('reports unavailable on a 5xx from validation with a cached service token', async () => {
    const v = validator();
    await v.validate(keystone.issueToken());
    keystone.setDown(true);
    const err = await failure(v.validate(keystone.issueToken()));
    expect(err.kind).toBe('unavailable');
    expect(keystone.requests.authenticate).toBe(1);
  });

  it('reports unavailable when Keystone does not answer in time', async () => {
    const v = validator({ timeoutMs: 200 });
    keystone.setDelay(2_000);
    const started = Date.now();
    const err = await failure(v.validate(keystone.issueToken()));
    expect(err.kind).toBe('unavailable');
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('reports unavailable when the service credentials are refused', async () => {
    const v = validator({ servicePassword: 'wrong' });
    const err = await failure(v.validate(keystone.issueToken()));
    expect(err.kind).toBe('unavailable');
  });

  it('reports unavailable on a malformed 200 answer', async () => {
    const server = http.createServer((req, res) => {
      if (req.method === 'POST') {
        res.writeHead(201, {
          'X-Subject-Token': 'svc',
          'Content-Type': 'application/json',
        });
        res.end(
          JSON.stringify({ token: { expires_at: '2999-01-01T00:00:00Z' } }),
        );
      } else {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"token": {"user": {}}}');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as AddressInfo;
      const v = validator({ url: `http://127.0.0.1:${port}` });
      expect((await failure(v.validate('gAAAAx'))).kind).toBe('unavailable');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('re-authenticates once when the service token is refused, then succeeds', async () => {
    const v = validator();
    await v.validate(keystone.issueToken());
    keystone.revokeServiceTokens();
    const identity = await v.validate(keystone.issueToken({ userId: 'u9' }));
    expect(identity.userId).toBe('u9');
    expect(keystone.requests).toMatchObject({ authenticate: 2, validate: 3 });
  });

  it('renews the service token shortly before it expires', async () => {
    await keystone.close();
    keystone = await startFakeKeystone({ serviceTokenTtlMs: 400 });
    const v = validator();
    await v.validate(keystone.issueToken());
    await v.validate(keystone.issueToken());
    expect(keystone.requests.authenticate).toBe(1);
    await sleep(450);
    const identity = await v.validate(keystone.issueToken({ userId: 'u3' }));
    expect(identity.userId).toBe('u3');
    // Renewed ahead of use: no request was made with the expired token.
    expect(keystone.requests).toMatchObject({ authenticate: 2, validate: 3 });
  });

  it('shares one Keystone request among concurrent validations of a token', async () => {
    const v = validator();
    keystone.setDelay(50);
    const token = keystone.issueToken({ userId: 'u1' });
    const identities = await Promise.all(
      Array.from({ length: 10 }, () => v.validate(token)),
    );
    expect(identities.map((i) => i.userId)).toEqual(Array(10).fill('u1'));
    expect(keystone.requests).toMatchObject({ authenticate: 1, validate: 1 });
  });

  it('shares one service authentication among concurrent validations', async () => {
    const v = validator();
    keystone.setDelay(50);
    const tokens = Array.from({ length: 5 }, () => keystone.issueToken());
    await Promise.all(tokens.map((t) => v.validate(t)));
    expect(keystone.requests).toMatchObject({ authenticate: 1, validate: 5 });
  });

  it('evicts the oldest identity when the cache is full', async () => {
    const v = validator({ cacheMaxEntries: 2 });
    const [a, b, c] = [1, 2, 3].map(() => keystone.issueToken());
    await v.validate(a);
    await v.validate(b);
    await v.validate(c);
    expect(keystone.requests.validate).toBe(3);
    await v.validate(b);
    await v.validate(c);
    expect(keystone.requests.validate).toBe(3);
    await v.validate(a);
    expect(keystone.requests.validate).toBe(4);
  });
});
