import { create as createDisposition } from 'content-disposition';
import type { ImageRecord } from '../registry/image-record.js';

/** Python's unicode() of a metadata value, as Glance puts it in a header. */
function headerText(value: unknown): string {
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value);
}

/** UTF-8 bytes carried in a latin1 string: how Node writes non-ASCII header values unchanged. */
function encodeHeaderValue(value: string): string {
  return /[\u0080-\uffff]/.test(value)
    ? Buffer.from(value, 'utf8').toString('latin1')
    : value;
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
      for (const [name, prop] of Object.entries(
        value as Record<string, string | null>,
      )) {
        if (prop !== null) {
          headers[`x-image-meta-property-${name.toLowerCase()}`] =
            encodeHeaderValue(prop);
        }
      }
      continue;
    }
    headers[`x-image-meta-${key.toLowerCase()}`] = encodeHeaderValue(
      headerText(value),
    );
  }
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
