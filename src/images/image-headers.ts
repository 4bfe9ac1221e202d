import { create as createDisposition } from 'content-disposition';
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

/** Characters no file name may carry: controls, path separators, quotes and what Windows refuses. */
// oxlint-disable-next-line no-control-regex -- control characters are what it removes
const UNSAFE_FILENAME = /[\u0000-\u001f\u007f-\u009f/\\"<>:|?*]+/g;
const MAX_FILENAME = 200;

/**
 * Content-Disposition of an image download: attachment, named after the
 * image (its id when unnamed) with its disk format as extension, sanitised
 * to a plain file name. Non-ASCII names travel as RFC 6266 filename*, with
 * an ASCII fallback in filename.
 */
export function downloadDisposition(
  image: Pick<ImageRecord, 'id' | 'name' | 'disk_format'>,
): string {
  let base = (image.name ?? '')
    .replace(UNSAFE_FILENAME, '_')
    .trim()
    .replace(/^\.+/, '');
  if (base.replace(/_/g, '') === '') base = image.id;
  const extension = image.disk_format ? `.${image.disk_format}` : '';
  if (extension && base.toLowerCase().endsWith(extension.toLowerCase())) {
    base = base.slice(0, -extension.length);
  }
  const filename = `${Array.from(base).slice(0, MAX_FILENAME).join('')}${extension}`;
  return createDisposition(filename, {
    fallback: filename.replace(/[^\x20-\x7e]/g, '_'),
  });
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
