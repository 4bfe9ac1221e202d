import type { NextFunction, Request, Response } from 'express';

const MEDIA_TYPE_PREFIX = 'application/vnd.openstack.images-';
const V1_NAMES = new Set(['v1', 'v1.0', 'v1.1']);

/** Paths served outside the versioned API. */
const UNVERSIONED = /^\/(api-docs|healthcheck|metrics)(\/|$|\?|-json)/;

/** The image cache's management routes, which today's glance-cache-manage calls under /v2. */
const V2_CACHE_MANAGEMENT = /^\/v2\/(cached_images|queued_images)(\/|$)/;

/** Glance's versions document (v1 only: this service does not speak v2). */
export function versionsDocument(req: Request): object {
  const host = `${req.protocol}://${req.headers.host ?? 'localhost'}`;
  const version = (id: string, status: string) => ({
    id,
    status,
    links: [{ rel: 'self', href: `${host}/v1/` }],
  });
  return { versions: [version('v1.1', 'CURRENT'), version('v1.0', 'SUPPORTED')] };
}

function sendVersions(req: Request, res: Response): void {
  res.status(300).type('application/json').send(JSON.stringify(versionsDocument(req)));
}

/**
 * Glance's VersionNegotiationFilter: /v1, /v1.0 and /v1.1 (or an
 * `Accept: application/vnd.openstack.images-v1` header on an unversioned
 * path) route to v1; anything else answers the versions document with 300.
 */
export function versionNegotiation(req: Request, res: Response, next: NextFunction): void {
  // The common case: a /v1/<something> path without a version Accept header is already routed.
  const url = req.url;
  if (
    url.startsWith('/v1/') &&
    url.length > 4 &&
    url.charCodeAt(4) !== 47 /* '/' */ &&
    url.charCodeAt(4) !== 63 /* '?' */ &&
    url.charCodeAt(url.length - 1) !== 63 /* an empty query is dropped below */ &&
    !acceptsVersionMediaType(req)
  ) {
    return next();
  }
  const [path, query = ''] = splitUrl(url);
  if (UNVERSIONED.test(path) || V2_CACHE_MANAGEMENT.test(path)) return next();
  const segments = path.replace(/^\/+/, '').split('/');
  if (segments[0] === 'versions') return sendVersions(req, res);

  const accept = String(req.headers.accept ?? '');
  let version: string;
  let rest: string;
  if (accept.startsWith(MEDIA_TYPE_PREFIX)) {
    version = accept.slice(MEDIA_TYPE_PREFIX.length).split(/[;,\s]/)[0];
    rest = path;
  } else {
    version = segments[0];
    rest = `/${segments.slice(1).join('/')}`;
  }
  if (!V1_NAMES.has(version)) return sendVersions(req, res);
  req.url = `/v1${rest === '/' ? '' : rest}${query ? `?${query}` : ''}`;
  next();
}

function acceptsVersionMediaType(req: Request): boolean {
  const accept = req.headers.accept;
  return accept !== undefined && String(accept).startsWith(MEDIA_TYPE_PREFIX);
}

function splitUrl(url: string): [string, string?] {
  const i = url.indexOf('?');
  return i === -1 ? [url] : [url.slice(0, i), url.slice(i + 1)];
}
