import type { ImageRecord } from '../registry/image-record.js';

/** Python's unicode() of a metadata value, as Glance puts it in a header. */
function headerText(value: unknown): string {
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value);
}

/** UTF-8 bytes carried in a latin1 string: how Node writes non-ASCII header values unchanged. */
function encodeHeaderValue(value: string): string {
  return /[\u0080-\uffff]/.test(value) ? Buffer.from(value, 'utf8').toString('latin1') : value;
}

/**
 * Glance's image_meta_to_http_headers: every non-null field as
 * x-image-meta-<field>, properties as x-image-meta-property-<name>.
 * Locations are never included.
 */
export function imageMetaToHeaders(image: ImageRecord): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(image)) {
    if (value === null || value === undefined) continue;
    if (key === 'location' || key === 'location_data') continue;
    if (key === 'properties') {
      for (const [name, prop] of Object.entries(value as Record<string, string | null>)) {
        if (prop !== null) {
          headers[`x-image-meta-property-${name.toLowerCase()}`] = encodeHeaderValue(prop);
        }
      }
      continue;
    }
    headers[`x-image-meta-${key.toLowerCase()}`] = encodeHeaderValue(headerText(value));
  }
  return headers;
}
