import { describe, expect, it } from 'vitest';
import { ExternalUrlGuard, redactUrl } from './external-url-guard.js';
import type { HostLookup } from './external-url-guard.js';
import { StoreError, StoreErrorCode } from './store.error.js';

/** Resolver from a fixed table; records every name asked so tests can prove no DNS was needed. */
function tableLookup(table: Record<string, string[]>) {
  const asked: string[] = [];
  const lookup: HostLookup = async (host) => {
    asked.push(host);
    const addresses = table[host];
    if (addresses === undefined) {
      const err: NodeJS.ErrnoException = new Error(
        `getaddrinfo ENOTFOUND ${host}`,
      );
      err.code = 'ENOTFOUND';
      throw err;
    }
    return addresses;
  };
  return { lookup, asked };
}

const noDns: HostLookup = async (host) => {
  throw new Error(`unexpected DNS lookup of ${host}`);
};

async function rejection(promise: Promise<unknown>): Promise<StoreError> {
  const err = await promise.then(
    () => {
      throw new Error('expected the check to reject');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreError);
  return err as StoreError;
}

describe('ExternalUrlGuard', () => {
  describe('blocks internal destinations given as literals (no DNS)', () => {
    const guard = new ExternalUrlGuard({ allowlist: [], lookup: noDns });

    it.each([
      ['http://127.0.0.1/', 'loopback'],
      ['http://2130706433/', 'loopback'],
      ['http://0x7f000001/', 'loopback'],
      ['http://0177.0.0.1/', 'loopback'],
      ['http://127.1/', 'loopback'],
      ['http://0x7f.1/', 'loopback'],
      ['http://127.0.0.1./', 'loopback'],
      ['http://127.255.255.254:8080/x', 'loopback'],
      ['http://①②⑦.0.0.1/', 'loopback'],
      ['http://[::1]/', 'loopback'],
      ['http://[0:0:0:0:0:0:0:1]/', 'loopback'],
      ['http://[::ffff:7f00:1]/', 'loopback'],
      ['http://[::ffff:127.0.0.1]/', 'loopback'],
      ['http://[0:0:0:0:0:ffff:127.0.0.1]/', 'loopback'],
      ['http://[::ffff:169.254.169.254]/', 'linkLocal'],
      ['http://[::ffff:0:a00:1]/', 'private'],
      ['http://[::127.0.0.1]/', 'ipv4Compatible'],
      ['http://[64:ff9b::7f00:1]/', 'loopback'],
      ['http://[64:ff9b::a9fe:a9fe]/', 'linkLocal'],
      ['http://[64:ff9b:1::1]/', 'rfc6052'],
      ['http://[2002:7f00:1::1]/', 'loopback'],
      ['http://[2002:c0a8:1::]/', 'private'],
      // Teredo with server 65.54.227.120 and bit-inverted client 10.0.0.1.
      ['http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/', 'private'],
      ['http://169.254.169.254/latest/meta-data', 'linkLocal'],
      ['http://169.254.0.1/', 'linkLocal'],
      ['http://10.1.2.3/', 'private'],
      ['http://192.168.0.1/', 'private'],
      ['http://172.16.0.1/', 'private'],
      ['http://172.31.255.255/', 'private'],
      ['http://100.64.0.1/', 'carrierGradeNat'],
      ['http://100.127.255.254/', 'carrierGradeNat'],
      ['http://0.0.0.0/', 'unspecified'],
      ['http://0/', 'unspecified'],
      ['http://[::]/', 'unspecified'],
      ['http://224.0.0.1/', 'multicast'],
      ['http://[ff02::1]/', 'multicast'],
      ['http://255.255.255.255/', 'broadcast'],
      ['http://240.0.0.1/', 'reserved'],
      ['http://192.0.2.10/', 'reserved'],
      ['http://198.18.0.1/', 'reserved'],
      ['http://[fc00::1]/', 'uniqueLocal'],
      ['http://[fd12:3456::1]/', 'uniqueLocal'],
      ['http://[fe80::1]/', 'linkLocal'],
      ['http://[febf::1]/', 'linkLocal'],
      ['http://[2001:db8::1]/', 'reserved'],
      ['https://127.0.0.1:8443/image', 'loopback'],
    ])('%s is FORBIDDEN (%s)', async (location, reason) => {
      const err = await rejection(guard.check(location));
      expect(err.code).toBe(StoreErrorCode.Forbidden);
      expect(err.message).toContain(reason);
    });

    it.each([
      'http://localhost/',
      'http://LOCALHOST./x',
      'http://api.localhost/',
    ])('%s is FORBIDDEN by name, before any lookup', async (location) => {
      const err = await rejection(guard.check(location));
      expect(err.code).toBe(StoreErrorCode.Forbidden);
    });
  });

  describe('resolves host names through the injected lookup', () => {
    const { lookup, asked } = tableLookup({
      'example.test': ['93.184.216.34'],
      'v6.example.test': ['2606:2800:220:1:248:1893:25c8:1946'],
      'private.example.test': ['10.0.0.1'],
      'mixed.example.test': ['93.184.216.34', '192.168.1.5'],
      'mapped.example.test': ['::ffff:127.0.0.1'],
      'loop.example.test': ['127.0.0.1', '::1'],
      'empty.example.test': [],
      'garbage.example.test': ['not-an-address'],
    });
    const guard = new ExternalUrlGuard({ allowlist: [], lookup });

    it('allows a host resolving to a public IPv4 address and returns it', async () => {
      const checked = await guard.check(
        'http://example.test/images/cirros.img',
      );
      expect(checked.addresses).toEqual(['93.184.216.34']);
      expect(checked.url.hostname).toBe('example.test');
      expect(asked).toContain('example.test');
    });

    it('allows a host resolving to a public IPv6 address', async () => {
      const checked = await guard.check('https://v6.example.test/img');
      expect(checked.addresses).toEqual(['2606:2800:220:1:248:1893:25c8:1946']);
    });

    it('allows public address literals without a lookup', async () => {
      const literalGuard = new ExternalUrlGuard({
        allowlist: [],
        lookup: noDns,
      });
      await expect(
        literalGuard.check('http://93.184.216.34/x'),
      ).resolves.toMatchObject({
        addresses: ['93.184.216.34'],
      });
      await expect(
        literalGuard.check('http://[2606:2800:220:1:248:1893:25c8:1946]/'),
      ).resolves.toMatchObject({
        addresses: ['2606:2800:220:1:248:1893:25c8:1946'],
      });
      // NAT64 and IPv4-mapped forms of a public address are public too.
      await expect(
        literalGuard.check('http://[64:ff9b::5db8:d822]/'),
      ).resolves.toBeDefined();
      await expect(
        literalGuard.check('http://[::ffff:93.184.216.34]/'),
      ).resolves.toBeDefined();
    });

    it.each([
      ['http://private.example.test/', 'private address 10.0.0.1'],
      ['http://mixed.example.test/', 'private address 192.168.1.5'],
      ['http://mapped.example.test/', 'loopback'],
      ['http://loop.example.test/', 'loopback'],
      ['http://garbage.example.test/', 'unrecognised address'],
    ])('blocks %s', async (location, reason) => {
      const err = await rejection(guard.check(location));
      expect(err.code).toBe(StoreErrorCode.Forbidden);
      expect(err.message).toContain(reason);
    });

    it('reports an unresolvable host as BAD_LOCATION', async () => {
      const err = await rejection(guard.check('http://nowhere.example.test/'));
      expect(err.code).toBe(StoreErrorCode.BadLocation);
      expect(err.message).toContain('ENOTFOUND');
      const empty = await rejection(guard.check('http://empty.example.test/'));
      expect(empty.code).toBe(StoreErrorCode.BadLocation);
    });

    it('reports a failing resolver as UNAVAILABLE', async () => {
      const flaky = new ExternalUrlGuard({
        allowlist: [],
        lookup: async () => {
          const err: NodeJS.ErrnoException = new Error('getaddrinfo EAI_AGAIN');
          err.code = 'EAI_AGAIN';
          throw err;
        },
      });
      const err = await rejection(flaky.check('http://example.test/'));
      expect(err.code).toBe(StoreErrorCode.Unavailable);
    });
  });

  describe('allowlist', () => {
    const { lookup } = tableLookup({
      'images.internal': ['10.20.0.5'],
      'images.internal.': ['10.20.0.5'],
      'mirror.internal': ['10.30.0.7'],
      'split.internal': ['10.20.0.9', '172.16.5.5'],
      'mapped.internal': ['::ffff:10.20.0.6'],
    });
    const guard = new ExternalUrlGuard({
      allowlist: [
        '127.0.0.1/32',
        'images.internal',
        '::1',
        '10.20.0.0/16',
        'fd00:1::/32',
      ],
      lookup,
    });

    it('admits an allowlisted host name whatever it resolves to', async () => {
      await expect(
        guard.check('http://images.internal/a'),
      ).resolves.toMatchObject({
        addresses: ['10.20.0.5'],
      });
      await expect(
        guard.check('http://IMAGES.internal./a'),
      ).resolves.toBeDefined();
    });

    it('admits addresses inside an allowlisted CIDR or equal to an allowlisted address', async () => {
      await expect(
        guard.check('http://127.0.0.1:8080/a'),
      ).resolves.toBeDefined();
      await expect(guard.check('http://2130706433/a')).resolves.toBeDefined();
      await expect(guard.check('http://[::1]/a')).resolves.toBeDefined();
      await expect(
        guard.check('http://[::ffff:127.0.0.1]/a'),
      ).resolves.toBeDefined();
      await expect(guard.check('http://10.20.255.1/a')).resolves.toBeDefined();
      await expect(
        guard.check('http://[fd00:1:2::3]/a'),
      ).resolves.toBeDefined();
      await expect(
        guard.check('http://mapped.internal/a'),
      ).resolves.toBeDefined();
    });

    it('still refuses what the allowlist does not cover', async () => {
      for (const location of [
        'http://127.0.0.2/',
        'http://mirror.internal/',
        'http://10.21.0.1/',
        'http://[fd00:2::1]/',
        'http://169.254.169.254/',
        'http://split.internal/',
      ]) {
        const err = await rejection(guard.check(location));
        expect(err.code, location).toBe(StoreErrorCode.Forbidden);
      }
    });

    it('rejects a malformed CIDR at construction', () => {
      expect(
        () => new ExternalUrlGuard({ allowlist: ['10.0.0.0/99'] }),
      ).toThrow(/CIDR/);
    });
  });

  describe('schemes and URL shape', () => {
    const guard = new ExternalUrlGuard({ allowlist: [], lookup: noDns });

    it.each([
      'file:///etc/passwd',
      'ftp://example.test/image',
      'gopher://127.0.0.1:6379/_INFO',
      'swift+https://user:key@auth/v1/container/obj',
      'data:text/plain,hello',
    ])('%s is BAD_LOCATION', async (location) => {
      const err = await rejection(guard.check(location));
      expect(err.code).toBe(StoreErrorCode.BadLocation);
    });

    it('rejects something that is not a URL as BAD_LOCATION', async () => {
      const err = await rejection(guard.check('not a url'));
      expect(err.code).toBe(StoreErrorCode.BadLocation);
    });

    it('never echoes userinfo in error messages', async () => {
      for (const location of [
        'http://alice:s3cret@10.0.0.1/img',
        'ftp://alice:s3cret@example.test/img',
        'http://alice:s3cret@[::1/img',
      ]) {
        const err = await rejection(guard.check(location));
        expect(err.message).not.toContain('s3cret');
        expect(err.message).not.toContain('alice');
      }
    });

    it('accepts userinfo on an allowed URL and keeps it in the returned URL', async () => {
      const checked = await guard.check(
        'http://alice:s3cret@93.184.216.34/img',
      );
      expect(checked.url.username).toBe('alice');
      expect(checked.url.password).toBe('s3cret');
    });

    it('redactUrl drops userinfo, query and fragment', () => {
      expect(redactUrl(new URL('https://u:p@host.test:8443/a/b?sig=x#f'))).toBe(
        'https://host.test:8443/a/b',
      );
    });
  });
});
