import {
  createParamDecorator,
  Injectable,
  type ExecutionContext,
  type PipeTransform,
} from '@nestjs/common';
import type { IncomingHttpHeaders } from 'node:http';
import { ApiError } from '../common/api-error.js';
import { boolFromString } from '../common/bool-from-string.js';
import { AppConfig } from '../config/app-config.js';
import { IMAGE_META_KEYS, type ImageMeta } from './image-meta.js';
import { validateImageMeta } from './image-meta-validation.js';

const META_PREFIX = 'x-image-meta-';
const PROPERTY_PREFIX = 'x-image-meta-property-';
const KNOWN_KEYS = new Set<string>(IMAGE_META_KEYS);
const INT_KEYS = ['size', 'min_disk', 'min_ram'] as const;
const BOOL_KEYS = ['is_public', 'deleted', 'protected'] as const;
const INTEGER = /^\s*[+-]?\d+\s*$/;

/** Hands the raw request headers to ImageMetaPipe. */
export const ImageMetaHeaders = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): IncomingHttpHeaders =>
    ctx.switchToHttp().getRequest<{ headers: IncomingHttpHeaders }>().headers,
);

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Node hands header bytes over as latin1; clients send UTF-8 (Glance encodes
 * headers so). Bytes that are not UTF-8 are taken as latin1, as they arrived:
 * glance-replicator's Python 3 port (http.client) sends headers in latin1.
 */
export function decodeHeaderValue(value: string): string {
  if (!/[\u0080-\uffff]/.test(value)) return value;
  try {
    return UTF8.decode(Buffer.from(value, 'latin1'));
  } catch {
    return value;
  }
}

/**
 * The x-image-meta-* header codec: decodes and validates the headers of a
 * create or update into ImageMeta, as Glance's ImageDeserializer does.
 * Unknown x-image-meta-* keys, non-integer or negative sizes and invalid
 * formats are 400s with a message naming what was wrong.
 */
@Injectable()
export class ImageMetaPipe implements PipeTransform<IncomingHttpHeaders, ImageMeta> {
  constructor(private readonly config: AppConfig) {}

  transform(headers: IncomingHttpHeaders): ImageMeta {
    const meta: Record<string, unknown> = {};
    const properties: Record<string, string | null> = {};
    for (const [rawKey, rawValue] of Object.entries(headers)) {
      const key = rawKey.toLowerCase();
      if (!key.startsWith(META_PREFIX)) continue;
      const value = Array.isArray(rawValue) ? rawValue.join(', ') : (rawValue ?? '');
      const decoded = value === '' ? null : decodeHeaderValue(value);
      if (key.startsWith(PROPERTY_PREFIX)) {
        const name = key.slice(PROPERTY_PREFIX.length).replaceAll('-', '_');
        if (name === '') throw ApiError.badRequest(`Bad header: ${key}`);
        properties[name] = decoded;
        continue;
      }
      const field = key.slice(META_PREFIX.length).replaceAll('-', '_');
      if (!KNOWN_KEYS.has(field)) throw ApiError.badRequest(`Bad header: ${key}`);
      meta[field] = decoded;
    }

    for (const key of INT_KEYS) {
      if (!(key in meta)) continue;
      const raw = meta[key] as string | null;
      if (raw === null || !INTEGER.test(raw)) {
        throw ApiError.badRequest(
          `Invalid value '${raw ?? ''}' for parameter '${key}': Cannot convert image ${key} '${raw ?? ''}' to an integer.`,
        );
      }
      const n = Number(raw.trim());
      if (n < 0) {
        throw ApiError.badRequest(
          `Invalid value '${raw}' for parameter '${key}': Image ${key} must be >= 0 ('${raw}' specified).`,
        );
      }
      if (!Number.isSafeInteger(n)) {
        throw ApiError.badRequest(`Invalid value '${raw}' for parameter '${key}': too large.`);
      }
      meta[key] = n;
    }
    for (const key of BOOL_KEYS) {
      if (key in meta) meta[key] = boolFromString(meta[key] as string | null);
    }

    const result = { ...meta, properties } as ImageMeta;
    return validateImageMeta(result, this.config);
  }
}
