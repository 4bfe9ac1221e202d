import { Injectable } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { ApiError } from '../common/api-error.js';
import { ExternalUrlGuard } from '../stores/external-url-guard.js';
import { StoreError, StoreErrorCode } from '../stores/store.error.js';
import { StoreRegistry } from '../stores/store.registry.js';

/** Schemes an external source may use: never file:// (LP #942118). */
const EXTERNAL_SCHEMES = new Set(['http', 'https']);

/**
 * External image sources (x-image-meta-location and x-glance-api-copy-from):
 * scheme rules from the seed's _validate_source, and every URL through the
 * read-only HTTP store, whose guard refuses internal addresses.
 */
@Injectable()
export class ExternalSourceService {
  constructor(
    private readonly stores: StoreRegistry,
    private readonly guard: ExternalUrlGuard,
  ) {}

  /** 400 unless `url` is an http(s) URL the SSRF guard lets through. */
  async validate(url: string): Promise<void> {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
    if (!scheme || !EXTERNAL_SCHEMES.has(scheme)) {
      throw ApiError.badRequest(`External sourcing not supported for store ${redact(url)}`);
    }
    try {
      await this.guard.check(url);
    } catch (err) {
      throw sourceError(err, url);
    }
  }

  /**
   * Remote size (0 when the server does not say), as Glance's
   * get_size_from_backend. Run before a location is stored: a location the
   * service cannot reach is the client's to fix, so that is a 400 too.
   */
  async sizeOf(url: string): Promise<number> {
    try {
      return await this.stores.forLocation(url).getSize(url);
    } catch (err) {
      if (err instanceof StoreError && err.code === StoreErrorCode.Unavailable) {
        throw unreachable(err);
      }
      throw sourceError(err, url);
    }
  }

  async open(url: string): Promise<{ stream: Readable; size: number | null }> {
    try {
      return await this.stores.forLocation(url).get(url);
    } catch (err) {
      throw sourceError(err, url);
    }
  }
}

/** Userinfo and query strings of external URLs may hold credentials. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    return u.toString();
  } catch {
    return '<invalid URL>';
  }
}

/** The answer does not repeat the URL: the client has it, and it may carry credentials. */
function unreachable(err: StoreError): ApiError {
  const code = (err.cause as NodeJS.ErrnoException | undefined)?.code;
  const reason = code ? ` (${code})` : '';
  return ApiError.badRequest(
    `The image location could not be read${reason}; nothing was stored. Check the URL and that its server is up.`,
  );
}

function sourceError(err: unknown, url: string): Error {
  if (!(err instanceof StoreError)) return err as Error;
  switch (err.code) {
    case StoreErrorCode.Forbidden:
    case StoreErrorCode.BadLocation:
    case StoreErrorCode.UnknownScheme:
      return ApiError.badRequest(`Invalid location ${redact(url)}: ${err.message}`);
    case StoreErrorCode.NotFound:
      return ApiError.badRequest(`External source ${redact(url)} not found`);
    default:
      return err;
  }
}
