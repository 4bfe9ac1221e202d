import { createReadStream, createWriteStream } from 'node:fs';
import { constants } from 'node:fs';
import { access, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FileImageReader } from './file-image.reader.js';
import type {
  AddOptions,
  ByteRange,
  ImageReader,
  ImageReadResult,
  ImageStore,
  StoredImage,
} from './image-store.interface.js';
import { StoreError, StoreErrorCode } from './store.error.js';

/** Image ids become file names: only this shape is ever joined to the data directory. */
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

/** Reads of 1 MiB: far fewer syscalls and event-loop turns than the 64 KiB default. */
const READ_CHUNK = 1024 * 1024;

/**
 * Filesystem store: one file per image under FILESYSTEM_STORE_DATADIR.
 * Bytes go to a temporary name and are renamed into place only when complete,
 * so a failed or aborted upload never leaves a file that looks like an image.
 */
export class FileStore implements ImageStore {
  readonly name = 'file';
  readonly schemes = ['file'] as const;
  readonly writable = true;
  private readonly root: string;

  constructor(dataDir: string) {
    this.root = resolve(dataDir);
  }

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true });
  }

  async add(imageId: string, data: Readable, options: AddOptions): Promise<StoredImage> {
    const finalPath = this.pathFor(imageId);
    const partPath = `${finalPath}.part`;
    await mkdir(this.root, { recursive: true });
    try {
      const out = createWriteStream(partPath, { flags: 'wx', highWaterMark: READ_CHUNK });
      await pipeline(data, out, { signal: options.signal });
      const { size } = await stat(partPath);
      await rename(partPath, finalPath);
      return { location: pathToFileURL(finalPath).href, size };
    } catch (err) {
      await rm(partPath, { force: true });
      throw this.translate(err, imageId);
    }
  }

  async get(location: string, range?: ByteRange): Promise<ImageReadResult> {
    const path = this.pathFromLocation(location);
    const size = await this.getSize(location);
    const stream = createReadStream(path, {
      highWaterMark: READ_CHUNK,
      ...(range ? { start: range.start, end: range.end } : {}),
    });
    return { stream, size: range ? range.end - range.start + 1 : size };
  }

  async openReader(location: string): Promise<ImageReader> {
    const path = this.pathFromLocation(location);
    try {
      const handle = await open(path, 'r');
      const { size } = await handle.stat();
      return new FileImageReader(handle, size);
    } catch (err) {
      throw this.translate(err, location);
    }
  }

  async getSize(location: string): Promise<number> {
    const path = this.pathFromLocation(location);
    try {
      return (await stat(path)).size;
    } catch (err) {
      throw this.translate(err, location);
    }
  }

  async delete(location: string): Promise<void> {
    await rm(this.pathFromLocation(location), { force: true });
  }

  /** Called only for images whose upload died: even a completed file is unreferenced. */
  async removePartial(imageId: string): Promise<void> {
    const path = this.pathFor(imageId);
    await rm(`${path}.part`, { force: true });
    await rm(path, { force: true });
  }

  async check(): Promise<void> {
    try {
      if (!(await stat(this.root)).isDirectory()) throw new Error('not a directory');
      await access(this.root, constants.W_OK);
    } catch (err) {
      throw new StoreError(StoreErrorCode.Unavailable, `File store directory unavailable`, {
        cause: err,
      });
    }
  }

  private pathFor(imageId: string): string {
    if (!SAFE_ID.test(imageId)) {
      throw new StoreError(StoreErrorCode.BadLocation, 'Invalid image id for the file store');
    }
    return join(this.root, imageId);
  }

  /** Accepts only file:// URLs that point directly inside the data directory. */
  private pathFromLocation(location: string): string {
    let path: string;
    try {
      path = fileURLToPath(location);
    } catch {
      throw new StoreError(StoreErrorCode.BadLocation, 'Not a file store location');
    }
    const resolved = resolve(path);
    const name = resolved.slice(this.root.length + 1);
    if (!resolved.startsWith(this.root + sep) || !SAFE_ID.test(name)) {
      throw new StoreError(StoreErrorCode.BadLocation, 'Location is outside the file store');
    }
    return resolved;
  }

  private translate(err: unknown, what: string): Error {
    if (err instanceof StoreError) return err;
    const code = (err as NodeJS.ErrnoException)?.code;
    switch (code) {
      case 'ENOENT':
        return new StoreError(StoreErrorCode.NotFound, `Image data not found`, { cause: err });
      case 'EEXIST':
        return new StoreError(StoreErrorCode.Duplicate, `Image data for ${what} already exists`, {
          cause: err,
        });
      case 'ENOSPC':
      case 'EDQUOT':
        return new StoreError(StoreErrorCode.StorageFull, 'Image storage media is full', {
          cause: err,
        });
      case 'EACCES':
      case 'EPERM':
      case 'EROFS':
        return new StoreError(
          StoreErrorCode.WriteDenied,
          'Insufficient permissions on image storage media',
          { cause: err },
        );
      default:
        return err instanceof Error ? err : new Error(String(err));
    }
  }
}
