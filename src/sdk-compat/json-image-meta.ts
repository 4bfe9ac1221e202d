import { ApiError } from '../common/api-error.js';
import { IMAGE_META_KEYS, type ImageMeta } from '../images/image-meta.js';
import type { ImageMetaPipe } from '../images/image-meta.pipe.js';

/**
 * Keys of an image body that only the service sets. openstacksdk sends back
 * what it read (`openstack image set` re-sends every unknown key of a
 * fetched image among its properties), so these are dropped, not refused.
 */
const READ_ONLY = new Set([
  'status',
  'created_at',
  'updated_at',
  'deleted_at',
  'deleted',
  'virtual_size',
  'os_hash_algo',
  'os_hash_value',
  'uri',
  'self',
  'file',
  'schema',
]);
const CORE = new Set<string>(
  IMAGE_META_KEYS.filter((k) => !READ_ONLY.has(k) && k !== 'copy_from'),
);
/** An HTTP token: property names must be usable as x-image-meta-property-<name>. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** What an HTTP header value cannot carry (tab is allowed). */
// oxlint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A JSON scalar as the text a header would carry ('' = null, as x-image-meta-* headers). */
function scalarText(key: string, value: unknown): string | null {
  if (value === null || value === '') return null;
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'string') {
    if (CONTROL.test(value)) {
      throw ApiError.badRequest(
        `Invalid value for '${key}': control characters are not allowed.`,
      );
    }
    return value;
  }
  throw ApiError.badRequest(
    `Invalid value for '${key}': expected a string, number, boolean or null.`,
  );
}

/** UTF-8 in a latin1 string: how Node hands over header bytes, which the pipe decodes. */
function asHeaderValue(text: string | null): string {
  if (text === null) return '';
  return /[\u0080-\uffff]/.test(text)
    ? Buffer.from(text, 'utf8').toString('latin1')
    : text;
}

/**
 * openstacksdk's JSON image body → ImageMeta, validated by the same
 * ImageMetaPipe (and so the same rules and messages) as x-image-meta-*
 * headers. Accepted shapes, as the SDK sends them:
 * - `{"image": {...}}` (Resource create/commit): properties flattened into
 *   the image, so every key that is not a core field is a property;
 * - a flat object with a nested `properties` object (the cloud layer's
 *   create with data): properties come from that object only (core keys
 *   there, such as `is_public` or `min_ram`, set the core field: the cloud
 *   layer files every keyword argument there), and other unknown keys at the
 *   root (the SDK leaks its own arguments, e.g. `validate_checksum`) are
 *   ignored.
 * Read-only keys are dropped; on update so is `id`.
 */
export function imageMetaFromJson(
  body: unknown,
  pipe: ImageMetaPipe,
  kind: 'create' | 'update',
): ImageMeta {
  if (!isObject(body))
    throw ApiError.badRequest('The request body must be a JSON object.');
  const wrapped = Object.keys(body).length === 1 && isObject(body.image);
  const fields = wrapped ? (body.image as Record<string, unknown>) : body;
  const nested = fields.properties;
  if (nested !== undefined && nested !== null && !isObject(nested)) {
    throw ApiError.badRequest(
      "Invalid value for 'properties': expected an object.",
    );
  }
  const headers: Record<string, string> = {};
  const properties: Record<string, string | null> = {};
  const addProperty = (name: string, value: unknown) => {
    if (!TOKEN.test(name))
      throw ApiError.badRequest(`Invalid property name '${name}'.`);
    properties[name] = scalarText(name, value);
  };
  for (const [key, value] of Object.entries(fields)) {
    if (key === 'properties' || READ_ONLY.has(key)) continue;
    if (key === 'id' && kind === 'update') continue;
    if (key === 'copy_from') {
      throw ApiError.badRequest(
        'copy_from is not accepted in a JSON body: use x-glance-api-copy-from.',
      );
    }
    if (CORE.has(key)) {
      headers[`x-image-meta-${key}`] = asHeaderValue(scalarText(key, value));
    } else if (!isObject(nested)) {
      addProperty(key, value);
    }
  }
  if (isObject(nested)) {
    for (const [name, value] of Object.entries(nested)) {
      // The cloud layer files every keyword (is_public, min_ram, ...) under properties.
      if (READ_ONLY.has(name)) continue;
      if (
        CORE.has(name) &&
        !(`x-image-meta-${name}` in headers) &&
        name !== 'id'
      ) {
        headers[`x-image-meta-${name}`] = asHeaderValue(
          scalarText(name, value),
        );
      } else {
        addProperty(name, value);
      }
    }
  }
  return { ...pipe.transform(headers), properties };
}
