import http from 'node:http';
import https from 'node:https';
import { isIPv6 } from 'node:net';
import type { LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import { redactUrl } from './external-url-guard.js';
import type { ExternalUrlGuard } from './external-url-guard.js';
import type {
  ByteRange,
  ImageReadResult,
  ImageStore,
  StoredImage,
} from './image-store.interface.js';
import { StoreError, StoreErrorCode } from './store.error.js';

export interface HttpStoreOptions {
  guard: ExternalUrlGuard;
  /** Redirects followed before giving up (Glance: 5). */
  maxRedirects?: number;
  /** Connect and idle timeout for each request, in milliseconds. */
  timeoutMs?: number;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
// 501 too: some servers answer a HEAD they do not implement with it.
const HEAD_UNSUPPORTED_STATUSES = new Set([405, 501]);

interface Credentials {
  origin: string;
  authorization: string;
}

interface OpenResponse {
  response: http.IncomingMessage;
  /** The URL that finally answered, after redirects. */
  url: URL;
}

/** A dns lookup that only ever answers with addresses the guard has already approved. */
function pinnedLookup(addresses: string[]): LookupFunction {
  const entries = addresses.map((address) => ({
    address,
    family: isIPv6(address) ? 6 : 4,
  }));
  return (_hostname, options, callback) => {
    const family =
      options.family === 'IPv4'
        ? 4
        : options.family === 'IPv6'
          ? 6
          : options.family;
    const usable =
      family === 4 || family === 6
        ? entries.filter((e) => e.family === family)
        : entries;
    if (usable.length === 0) {
      const err: NodeJS.ErrnoException = new Error('No approved address');
      err.code = 'ENOTFOUND';
      callback(err, '');
    } else if (options.all) {
      callback(null, usable);
    } else {
      callback(null, usable[0].address, usable[0].family);
    }
  };
}

function decodeUserinfo(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** Userinfo of the URL, else those of the previous hop when still on the same origin (as curl). */
function credentialsFor(
  url: URL,
  previous: Credentials | null,
): Credentials | null {
  if (url.username !== '' || url.password !== '') {
    const user = decodeUserinfo(url.username);
    const password = decodeUserinfo(url.password);
    return {
      origin: url.origin,
      authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
    };
  }
  return previous?.origin === url.origin ? previous : null;
}

function contentLength(response: http.IncomingMessage): number | null {
  const header = response.headers['content-length'];
  return header !== undefined && /^\d+$/.test(header) ? Number(header) : null;
}

function unavailable(url: URL, what: string, cause?: unknown): StoreError {
  return new StoreError(
    StoreErrorCode.Unavailable,
    `HTTP image location ${redactUrl(url)} ${what}`,
    { cause },
  );
}

function describeNetworkError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code ?? (err instanceof Error ? err.message : String(err));
}

interface BodyOptions {
  url: URL;
  /** Content-Length of the response, or null. */
  expected: number | null;
  /** Range to cut out when the server sent the whole image instead. */
  slice: ByteRange | null;
  idleMs: number;
}

/**
 * Yields the response body; throws when the connection ends before the
 * announced length or the server goes quiet while we are waiting for data.
 * The idle timer runs only while waiting, so a slow consumer is not a stall.
 */
async function* bodyChunks(
  response: http.IncomingMessage,
  { url, expected, slice, idleMs }: BodyOptions,
): AsyncGenerator<Buffer> {
  const chunks = response[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let received = 0;
  try {
    for (;;) {
      const timer = setTimeout(() => {
        response.destroy(unavailable(url, `sent nothing for ${idleMs} ms`));
      }, idleMs);
      let next: IteratorResult<Buffer>;
      try {
        next = await chunks.next();
      } catch (err) {
        if (err instanceof StoreError) throw err;
        throw unavailable(
          url,
          `closed the connection after ${received} bytes (${describeNetworkError(err)})`,
          err,
        );
      } finally {
        clearTimeout(timer);
      }
      if (next.done) break;

      const chunk = next.value;
      const offset = received;
      received += chunk.length;
      if (slice === null) {
        yield chunk;
        continue;
      }
      const from = Math.max(slice.start - offset, 0);
      const to = Math.min(slice.end + 1 - offset, chunk.length);
      if (to > from) yield chunk.subarray(from, to);
      if (received > slice.end) return;
    }
  } finally {
    // Also runs when the consumer goes away: stop the download.
    response.destroy();
  }
  if (expected !== null && received < expected) {
    throw unavailable(url, `sent ${received} of ${expected} bytes`);
  }
}

/**
 * Read-only store for images that live at an external http(s) URL, as
 * Glance's http store. Every hop is vetted by the guard and the socket is
 * connected to exactly the address the guard approved.
 */
export class HttpStore implements ImageStore {
  readonly name = 'http';
  readonly schemes = ['http', 'https'] as const;
  readonly writable = false;

  private readonly guard: ExternalUrlGuard;
  private readonly maxRedirects: number;
  private readonly timeoutMs: number;

  constructor(options: HttpStoreOptions) {
    this.guard = options.guard;
    this.maxRedirects = options.maxRedirects ?? 5;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  add(): Promise<StoredImage> {
    return Promise.reject(
      new StoreError(
        StoreErrorCode.ReadOnly,
        'The http store is read-only; images cannot be uploaded to it',
      ),
    );
  }

  async get(location: string, range?: ByteRange): Promise<ImageReadResult> {
    if (
      range !== undefined &&
      !(
        Number.isSafeInteger(range.start) &&
        Number.isSafeInteger(range.end) &&
        range.start >= 0 &&
        range.end >= range.start
      )
    ) {
      throw new StoreError(
        StoreErrorCode.BadLocation,
        `Invalid byte range ${range.start}-${range.end}`,
      );
    }
    const { response, url } = await this.open(location, 'GET', range);
    const length = contentLength(response);
    // A 200 to a ranged request carries the whole image; cut the range out ourselves.
    const slice =
      range !== undefined && response.statusCode !== 206 ? range : null;
    let size = length;
    if (slice !== null) {
      size =
        length === null
          ? null
          : Math.max(Math.min(slice.end + 1, length) - slice.start, 0);
    }
    const body = bodyChunks(response, {
      url,
      expected: length,
      slice,
      idleMs: this.timeoutMs,
    });
    const stream = Readable.from(body, { objectMode: false });
    return { stream, size };
  }

  async getSize(location: string): Promise<number> {
    const { response } = await this.open(location, 'HEAD');
    response.destroy();
    // Glance reports a missing Content-Length as 0, meaning "unknown".
    return contentLength(response) ?? 0;
  }

  delete(): Promise<void> {
    // Glance's http store cannot delete the remote bytes; forgetting the location is enough.
    return Promise.resolve();
  }

  check(): Promise<void> {
    return Promise.resolve();
  }

  /** Sends the request, following vetted redirects, and returns a 2xx response with an unread body. */
  private async open(
    location: string,
    initialMethod: 'GET' | 'HEAD',
    range?: ByteRange,
  ): Promise<OpenResponse> {
    let target = location;
    let method = initialMethod;
    let credentials: Credentials | null = null;
    let redirects = 0;
    for (;;) {
      const { url, addresses } = await this.guard.check(target);
      credentials = credentialsFor(url, credentials);
      const response = await this.send(
        url,
        addresses,
        method,
        credentials,
        range,
      );
      const status = response.statusCode ?? 0;

      if (status >= 200 && status < 300) {
        return { response, url };
      }
      response.destroy();

      if (method === 'HEAD' && HEAD_UNSUPPORTED_STATUSES.has(status)) {
        method = 'GET';
        continue;
      }
      if (REDIRECT_STATUSES.has(status) && response.headers.location) {
        if (redirects >= this.maxRedirects) {
          throw new StoreError(
            StoreErrorCode.BadLocation,
            `HTTP image location ${redactUrl(url)} exceeded ${this.maxRedirects} redirects`,
          );
        }
        redirects++;
        try {
          target = new URL(response.headers.location, url).href;
        } catch {
          throw new StoreError(
            StoreErrorCode.BadLocation,
            `HTTP image location ${redactUrl(url)} redirected to an invalid URL`,
          );
        }
        continue;
      }
      throw this.statusError(url, status);
    }
  }

  private statusError(url: URL, status: number): StoreError {
    if (status === 404 || status === 410) {
      return new StoreError(
        StoreErrorCode.NotFound,
        `No image found at HTTP location ${redactUrl(url)}`,
      );
    }
    if (status >= 500) {
      return unavailable(url, `answered with status ${status}`);
    }
    return new StoreError(
      StoreErrorCode.BadLocation,
      `HTTP image location ${redactUrl(url)} answered with status ${status}`,
    );
  }

  private send(
    url: URL,
    addresses: string[],
    method: 'GET' | 'HEAD',
    credentials: Credentials | null,
    range?: ByteRange,
  ): Promise<http.IncomingMessage> {
    const headers: http.OutgoingHttpHeaders = {
      accept: '*/*',
      // Sizes must be the stored bytes, not a compressed transfer form.
      'accept-encoding': 'identity',
    };
    if (credentials !== null) headers.authorization = credentials.authorization;
    if (range !== undefined)
      headers.range = `bytes=${range.start}-${range.end}`;

    const hostname = url.hostname.replace(/^\[|\]$/g, '');
    const requestFn = url.protocol === 'https:' ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const request = requestFn({
        method,
        // Keep the original name for the Host header and TLS SNI/verification...
        host: hostname,
        port: url.port || undefined,
        path: `${url.pathname}${url.search}`,
        headers,
        // ...but connect only to the address the guard approved.
        lookup: pinnedLookup(addresses),
        // A fresh socket every time: a pooled one may lead to another address.
        agent: false,
        timeout: this.timeoutMs,
      });
      request.once('response', (response) => {
        // From here on the idle timeout set on the body applies.
        request.setTimeout(0);
        resolve(response);
      });
      request.once('timeout', () => {
        request.destroy(
          unavailable(url, `did not answer within ${this.timeoutMs} ms`),
        );
      });
      request.on('error', (err) => {
        reject(
          err instanceof StoreError
            ? err
            : unavailable(
                url,
                `could not be reached (${describeNetworkError(err)})`,
                err,
              ),
        );
      });
      request.end();
    });
  }
}
