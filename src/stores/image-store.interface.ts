import type { Readable, Writable } from 'node:stream';

/** What a store reports after it has durably written an image's bytes. */
export interface StoredImage {
  /** URL that identifies the bytes inside this store; never leaves the service. */
  location: string;
  /** Bytes written. */
  size: number;
  /** Store-specific details kept in `location_data` (never in responses). */
  metadata?: Record<string, unknown>;
}

export interface ImageReadResult {
  stream: Readable;
  /** Size in bytes as the store reports it, or null when unknown. */
  size: number | null;
}

/**
 * An opened image that writes itself into a destination, reusing its read
 * buffers once the destination has taken each chunk (no per-chunk allocation,
 * so no GC churn on multi-GB downloads).
 */
export interface ImageReader {
  /** Size in bytes as the store reports it. */
  readonly size: number;
  /**
   * Writes exactly `expected` bytes to `out` and resolves with the count.
   * Rejects (having written fewer) when the data is shorter or longer than
   * `expected`, or when `out` fails. Always releases the reader.
   */
  pipeTo(out: Writable, expected: number): Promise<number>;
  /** Releases the reader without sending (when the response fails first). */
  close(): Promise<void>;
}

export interface AddOptions {
  /** Expected size when the client announced one (lets stores choose segmenting); null if unknown. */
  expectedSize: number | null;
  /** Aborts the write; the store must then remove every byte it wrote. */
  signal?: AbortSignal;
}

export interface ByteRange {
  start: number;
  /** Inclusive end offset. */
  end: number;
}

/**
 * One backend for image bytes. Implementations stream both ways and never
 * buffer a whole image. `add` must leave nothing behind when it rejects.
 */
export interface ImageStore {
  /** Store name as used by DEFAULT_STORE and x-image-meta-store (file, http, swift, s3). */
  readonly name: string;
  /** URL schemes of the locations this store understands. */
  readonly schemes: readonly string[];
  /** False for read-only stores (http). */
  readonly writable: boolean;

  add(imageId: string, data: Readable, options: AddOptions): Promise<StoredImage>;
  get(location: string, range?: ByteRange): Promise<ImageReadResult>;
  /** Optional fast path for whole-image downloads (see ImageReader). */
  openReader?(location: string): Promise<ImageReader>;
  getSize(location: string): Promise<number>;
  /** Removes the bytes; resolves when they are gone or were already gone. */
  delete(location: string): Promise<void>;
  /** Health probe: resolves when the backend answers. */
  check(): Promise<void>;
  /**
   * Removes whatever an interrupted `add` of `imageId` may have left (a
   * process killed mid-upload cannot clean up after itself).
   */
  removePartial?(imageId: string): Promise<void>;
}
