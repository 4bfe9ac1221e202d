import { ApiError } from '../common/api-error.js';
import { strictBoolFromString } from '../common/bool-from-string.js';
import type { RequestContext } from '../common/request-context.js';
import { formatTimestamp, parseIsoTime } from '../common/timestamps.js';
import {
  SORT_KEYS,
  type ImageListFilters,
  type ImageListQuery,
  type SortDir,
  type SortKey,
} from '../registry/image-list-query.js';

type Query = Record<string, unknown>;

const UUID_LIKE =
  /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

function text(query: Query, key: string): string | undefined {
  const v = query[key];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? String(v[v.length - 1]) : String(v);
}

function nonNegativeInt(query: Query, key: string): number | undefined {
  const v = text(query, key);
  if (v === undefined) return undefined;
  if (!/^\s*\+?\d+\s*$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw ApiError.badRequest(`Bad value passed to filter ${key} got ${v}`);
  }
  return Number(v);
}

function boolFilter(query: Query, key: string, message: string): boolean | null | undefined {
  const v = text(query, key);
  if (v === undefined) return undefined;
  if (v.trim().toLowerCase() === 'none') return null;
  const b = ['true', '1'].includes(v.trim().toLowerCase())
    ? true
    : ['false', '0'].includes(v.trim().toLowerCase())
      ? false
      : undefined;
  if (b === undefined) throw ApiError.badRequest(message);
  return b;
}

/**
 * Turns GET /v1/images query parameters into a registry query, validating them
 * as Glance's API and registry do (bad values are 400s with Glance's messages).
 */
export function parseImageListQuery(
  query: Query,
  ctx: RequestContext,
  limits: { defaultLimit: number; maxLimit: number },
): ImageListQuery {
  const filters: ImageListFilters = {};
  for (const key of ['name', 'status', 'container_format', 'disk_format'] as const) {
    const v = text(query, key);
    if (v !== undefined) filters[key] = v;
  }
  for (const key of ['min_ram', 'min_disk', 'size_min', 'size_max'] as const) {
    const v = nonNegativeInt(query, key);
    if (v !== undefined) filters[key] = v;
  }
  const isProtected = boolFilter(query, 'protected', 'protected must be True, or False');
  if (isProtected !== undefined && isProtected !== null) filters.protected = isProtected;

  const since = text(query, 'changes-since');
  if (since !== undefined) {
    const date = parseIsoTime(since);
    if (!date) throw ApiError.badRequest('Unrecognized changes-since value');
    filters.changes_since = formatTimestamp(date);
  }

  const properties: Record<string, string> = {};
  for (const key of Object.keys(query)) {
    if (key.startsWith('property-') && key.length > 'property-'.length) {
      properties[key.slice('property-'.length)] = text(query, key)!;
    }
  }
  if (Object.keys(properties).length) filters.properties = properties;

  // Glance: admins see every image only with is_public=None; without it they
  // list as a regular user would. Everyone else may narrow by is_public.
  const isPublic = boolFilter(query, 'is_public', 'is_public must be None, True, or False');
  let adminAsUser = false;
  if (ctx.isAdmin) {
    if (isPublic === undefined) adminAsUser = true;
    else if (isPublic === false) filters.is_public = false;
    else if (isPublic === true) adminAsUser = true;
    const deleted = text(query, 'deleted');
    if (deleted !== undefined) {
      const d = strictBoolFromString(deleted);
      if (d === null) throw ApiError.badRequest('deleted must be True, or False');
      filters.deleted = d;
    }
  } else if (isPublic !== undefined && isPublic !== null) {
    filters.is_public = isPublic;
  }

  return {
    filters,
    limit: parseLimit(text(query, 'limit'), limits),
    marker: parseMarker(text(query, 'marker')),
    sortKey: parseSortKey(text(query, 'sort_key')),
    sortDir: parseSortDir(text(query, 'sort_dir')),
    adminAsUser,
  };
}

function parseLimit(v: string | undefined, limits: { defaultLimit: number; maxLimit: number }): number {
  if (v === undefined) return Math.min(limits.defaultLimit, limits.maxLimit);
  if (!/^\s*[+-]?\d+\s*$/.test(v)) throw ApiError.badRequest('limit param must be an integer');
  const n = Number(v);
  if (n < 0) throw ApiError.badRequest('limit param must be positive');
  return Math.min(limits.maxLimit, n);
}

function parseMarker(v: string | undefined): string | undefined {
  if (v === undefined || v === '') return undefined;
  if (!UUID_LIKE.test(v)) throw ApiError.badRequest('Invalid marker format');
  return v;
}

function parseSortKey(v: string | undefined): SortKey {
  if (v === undefined) return 'created_at';
  if (!(SORT_KEYS as readonly string[]).includes(v)) {
    throw ApiError.badRequest(`Unsupported sort_key. Acceptable values: ${SORT_KEYS.join(', ')}`);
  }
  return v as SortKey;
}

function parseSortDir(v: string | undefined): SortDir {
  if (v === undefined) return 'desc';
  if (v !== 'asc' && v !== 'desc') {
    throw ApiError.badRequest('Unsupported sort_dir. Acceptable values: asc, desc');
  }
  return v;
}
