import type { ImageRecord } from '../registry/image-record.js';

/** Python's unicode() of a metadata value, as Glance puts it in a header. */
function headerText(value: unknown): string {
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value);
}

const NON_ASCII = /[\u0080-\uffff]/;

/** UTF-8 bytes carried in a latin1 string: how Node writes non-ASCII header values unchanged. */
function encodeHeaderValue(value: string): string {
  return NON_ASCII.test(value) ? Buffer.from(value, 'utf8').toString('latin1') : value;
}

/** x-image-meta-<field> names, built once per field (the record's keys come from code, not clients). */
const FIELD_HEADER_NAMES = new Map<string, string>();

function fieldHeaderName(key: string): string {
  let name = FIELD_HEADER_NAMES.get(key);
  if (name === undefined) {
    name = `x-image-meta-${key.toLowerCase()}`;
    FIELD_HEADER_NAMES.set(key, name);
  }
  return name;
}

/**
 * Glance's image_meta_to_http_headers: every non-null field as
 * x-image-meta-<field>, properties as x-image-meta-property-<name>, in the
 * record's order. Locations are never included.
 */
function eachImageMetaHeader(
  image: ImageRecord,
  emit: (name: string, value: string) => void,
): void {
  const record = image as unknown as Record<string, unknown>;
  const keys = Object.keys(record);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const value = record[key];
    if (value === null || value === undefined) continue;
    if (key === 'location' || key === 'location_data') continue;
    if (key === 'properties') {
      const properties = value as Record<string, string | null>;
      const names = Object.keys(properties);
      for (let j = 0; j < names.length; j++) {
        const prop = properties[names[j]];
        if (prop !== null) {
          emit(`x-image-meta-property-${names[j].toLowerCase()}`, encodeHeaderValue(prop));
        }
      }
      continue;
    }
    emit(fieldHeaderName(key), encodeHeaderValue(headerText(value)));
  }
}

/** The x-image-meta-* headers of `image` as an object (see eachImageMetaHeader). */
export function imageMetaToHeaders(image: ImageRecord): Record<string, string> {
  const headers: Record<string, string> = {};
  eachImageMetaHeader(image, (name, value) => {
    headers[name] = value;
  });
  return headers;
}

/** Sets the x-image-meta-* headers of `image` on `res` directly, without an intermediate object. */
export function setImageMetaHeaders(
  res: { setHeader(name: string, value: string): unknown },
  image: ImageRecord,
): void {
  eachImageMetaHeader(image, (name, value) => {
    res.setHeader(name, value);
  });
}
