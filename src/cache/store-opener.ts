import type { Readable } from 'node:stream';
import type { ImageRecord } from '../registry/image-record.js';
import type { StoreRegistry } from '../stores/store.registry.js';

/** Reads an image's bytes from its store, whole or from a byte offset to its end. */
export function storeOpener(
  stores: StoreRegistry,
  image: ImageRecord,
): (offset?: number) => Promise<Readable> {
  return async (offset = 0) => {
    const location = image.location;
    if (!location) throw new Error(`image ${image.id} has no location`);
    const store = stores.forLocation(location);
    const size = image.size ?? 0;
    const range = offset > 0 ? { start: offset, end: size - 1 } : undefined;
    return (await store.get(location, range)).stream;
  };
}
