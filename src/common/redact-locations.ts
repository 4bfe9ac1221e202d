/** Keys that may carry store credentials: they never leave the service. */
export const REDACTED_KEYS = new Set([
  'location',
  'location_data',
  'locations',
]);

/** User metadata: a property may well be called "location" and is not a store URL. */
const USER_DATA_KEYS = new Set(['properties']);

/**
 * `value` without location keys at any depth (except inside image
 * `properties`, which are the user's own data). Objects that hold none are
 * returned as they are (no copy on the hot path); the others are copied, so
 * the caller's data is never modified.
 */
export function redactLocations<T>(value: T): T {
  if (Array.isArray(value)) {
    let out: unknown[] | null = null;
    for (let i = 0; i < value.length; i++) {
      const v = redactLocations(value[i]);
      if (v !== value[i] && out === null) out = value.slice(0, i);
      if (out !== null) out.push(v);
    }
    return (out ?? value) as T;
  }
  if (value === null || typeof value !== 'object' || value instanceof Date)
    return value;
  if (Buffer.isBuffer(value)) return value;
  const source = value as Record<string, unknown>;
  let out: Record<string, unknown> | null = null;
  const keys = Object.keys(source);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    const v = REDACTED_KEYS.has(k)
      ? undefined
      : USER_DATA_KEYS.has(k)
        ? source[k]
        : redactLocations(source[k]);
    const changed = REDACTED_KEYS.has(k) || v !== source[k];
    if (changed && out === null) {
      out = {};
      for (let j = 0; j < i; j++) out[keys[j]] = source[keys[j]];
    }
    if (out !== null && !REDACTED_KEYS.has(k)) out[k] = v;
  }
  return (out ?? value) as T;
}

/** List bodies whose images were built without location fields (see `imageListBody`). */
const FLAT_IMAGE_LISTS = new WeakSet<object>();

/**
 * `{ images }` for a list response whose entries are flat image records
 * (every value a scalar except the user's `properties`) and were read
 * without locations. The redaction interceptor then only checks each entry's
 * own keys instead of walking the whole body.
 */
export function imageListBody<T extends object>(
  images: T[],
  next?: string,
): { images: T[]; next?: string } {
  // `next` (openstacksdk's paging link) is a URL of this service, never a location.
  const body = next === undefined ? { images } : { images, next };
  FLAT_IMAGE_LISTS.add(body);
  return body;
}

/**
 * True when `body` came from `imageListBody` and each entry is still flat
 * with no location key: the cheap check the interceptor makes before
 * trusting it (anything else gets the full walk).
 */
export function isLocationFreeImageList(body: unknown): boolean {
  if (typeof body !== 'object' || body === null || !FLAT_IMAGE_LISTS.has(body))
    return false;
  const images = (body as { images: unknown }).images;
  if (!Array.isArray(images)) return false;
  for (let i = 0; i < images.length; i++) {
    const image = images[i] as Record<string, unknown>;
    if (typeof image !== 'object' || image === null) return false;
    for (const key in image) {
      if (REDACTED_KEYS.has(key)) return false;
      const value = image[key];
      if (typeof value === 'object' && value !== null && !USER_DATA_KEYS.has(key))
        return false;
    }
  }
  return Object.keys(body).length === 1;
}
