import { lookup as dnsLookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';
import { StoreError, StoreErrorCode } from './store.error.js';

type IPAddress = ipaddr.IPv4 | ipaddr.IPv6;

export type HostLookup = (host: string) => Promise<string[]>;

export interface ExternalUrlGuardOptions {
  /** Host names, addresses and CIDRs that may be reached even though they are internal. */
  allowlist: readonly string[];
  /** Resolves a host name to its addresses; defaults to the system resolver (all families). */
  lookup?: HostLookup;
}

export interface CheckedUrl {
  url: URL;
  /** Addresses that passed the check; connect only to these (defeats DNS rebinding). */
  addresses: string[];
}

const ALLOWED_SCHEMES = new Set(['http:', 'https:']);

const NAT64_WELL_KNOWN = ipaddr.IPv6.parseCIDR('64:ff9b::/96');

async function systemLookup(host: string): Promise<string[]> {
  const results = await dnsLookup(host, { all: true, verbatim: true });
  return results.map((r) => r.address);
}

/** The URL without credentials, query or fragment: safe for error messages and logs. */
export function redactUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function isLocalhostName(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost');
}

function normaliseHostName(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function ipv4FromParts(high: number, low: number): ipaddr.IPv4 {
  return new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
}

/** IPv4 addresses that an IPv6 address carries and that traffic may end up at. */
function embeddedIPv4(addr: ipaddr.IPv6): ipaddr.IPv4[] {
  const p = addr.parts;
  switch (addr.range()) {
    case 'ipv4Mapped':
    case 'rfc6145':
      return [ipv4FromParts(p[6], p[7])];
    case 'rfc6052':
      return addr.match(NAT64_WELL_KNOWN) ? [ipv4FromParts(p[6], p[7])] : [];
    case '6to4':
      return [ipv4FromParts(p[1], p[2])];
    case 'teredo':
      // Server address in clear; client address stored bit-inverted.
      return [
        ipv4FromParts(p[2], p[3]),
        ipv4FromParts(~p[6] & 0xffff, ~p[7] & 0xffff),
      ];
    default:
      return [];
  }
}

/** Why the address is not a public unicast destination, or null when it is. */
function blockedReason(addr: IPAddress): string | null {
  if (addr.kind() === 'ipv4') {
    const range = addr.range();
    return range === 'unicast' ? null : range;
  }
  const v6 = addr as ipaddr.IPv6;
  const range = v6.range();
  if (range === 'unicast') {
    // ::a.b.c.d (deprecated IPv4-compatible form); :: and ::1 are classified above.
    return v6.parts.slice(0, 6).every((part) => part === 0)
      ? 'ipv4Compatible'
      : null;
  }
  const embedded = embeddedIPv4(v6);
  if (embedded.length === 0) return range;
  for (const v4 of embedded) {
    const inner = blockedReason(v4);
    if (inner !== null) return `${range} of ${inner} ${v4.toString()}`;
  }
  return null;
}

/**
 * Decides whether a user-supplied http(s) URL may be fetched by the service:
 * every address its host resolves to must be public unicast or allowlisted.
 */
export class ExternalUrlGuard {
  private readonly allowedHosts = new Set<string>();
  private readonly allowedRanges: [IPAddress, number][] = [];
  private readonly lookup: HostLookup;

  constructor(options: ExternalUrlGuardOptions) {
    this.lookup = options.lookup ?? systemLookup;
    for (const raw of options.allowlist) {
      const entry = stripBrackets(raw.trim());
      if (entry === '') continue;
      if (entry.includes('/')) {
        if (!ipaddr.isValidCIDR(entry)) {
          throw new Error(`Invalid CIDR in URL allowlist: ${raw}`);
        }
        this.allowedRanges.push(ipaddr.parseCIDR(entry));
      } else if (ipaddr.isValid(entry)) {
        const addr = ipaddr.parse(entry);
        this.allowedRanges.push([addr, addr.kind() === 'ipv4' ? 32 : 128]);
      } else {
        this.allowedHosts.add(normaliseHostName(entry));
      }
    }
  }

  async check(location: string): Promise<CheckedUrl> {
    let url: URL;
    try {
      url = new URL(location);
    } catch {
      throw new StoreError(
        StoreErrorCode.BadLocation,
        'Image location is not a valid URL',
      );
    }
    if (!ALLOWED_SCHEMES.has(url.protocol)) {
      throw new StoreError(
        StoreErrorCode.BadLocation,
        `Image location scheme ${url.protocol} is not supported; use http or https`,
      );
    }
    if (url.hostname === '') {
      throw new StoreError(
        StoreErrorCode.BadLocation,
        `Image location ${redactUrl(url)} has no host`,
      );
    }

    const host = stripBrackets(url.hostname);
    const hostAllowed = this.allowedHosts.has(normaliseHostName(host));
    // WHATWG parsing has already turned every numeric IPv4 spelling into dotted decimal.
    const literal = ipaddr.isValid(host);

    if (!literal && !hostAllowed && isLocalhostName(normaliseHostName(host))) {
      throw this.forbidden(url, `host name ${host}`);
    }

    const addresses = literal ? [host] : await this.resolve(url, host);
    for (const address of addresses) {
      if (!ipaddr.isValid(address)) {
        throw this.forbidden(url, `unrecognised address ${address}`);
      }
      const parsed = ipaddr.parse(address);
      if (hostAllowed || this.isAllowlisted(parsed)) continue;
      const reason = blockedReason(parsed);
      if (reason !== null) {
        throw this.forbidden(url, `${reason} address ${address}`);
      }
    }
    return { url, addresses };
  }

  private async resolve(url: URL, host: string): Promise<string[]> {
    let addresses: string[];
    try {
      addresses = await this.lookup(host);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const notFound = code === 'ENOTFOUND' || code === 'ENODATA';
      throw new StoreError(
        notFound ? StoreErrorCode.BadLocation : StoreErrorCode.Unavailable,
        `Could not resolve the host of ${redactUrl(url)}${code ? ` (${code})` : ''}`,
        { cause: err },
      );
    }
    if (addresses.length === 0) {
      throw new StoreError(
        StoreErrorCode.BadLocation,
        `The host of ${redactUrl(url)} has no addresses`,
      );
    }
    return addresses;
  }

  private isAllowlisted(addr: IPAddress): boolean {
    const candidates: IPAddress[] = [addr];
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
      candidates.push((addr as ipaddr.IPv6).toIPv4Address());
    }
    return candidates.some((candidate) =>
      this.allowedRanges.some(
        ([range, bits]) =>
          range.kind() === candidate.kind() && candidate.match(range, bits),
      ),
    );
  }

  private forbidden(url: URL, what: string): StoreError {
    return new StoreError(
      StoreErrorCode.Forbidden,
      `Image location ${redactUrl(url)} is refused: ${what} is an internal or reserved destination`,
    );
  }
}
