import { Transform } from 'node:stream';
import type { TransformCallback, TransformOptions } from 'node:stream';
import { copyIntoShared } from './copy-into-shared.js';
import type {
  HashDigests,
  HashSlab,
  HashWorkerPool,
} from './hash-worker-pool.js';

export interface DigestResult extends HashDigests {
  size: number;
}

export interface DigestStreamOptions extends Pick<
  TransformOptions,
  'highWaterMark'
> {
  /** The workers that compute the digests. */
  pool: HashWorkerPool;
  /** Slabs this stream may hold (filling + being hashed) before it stops reading. */
  maxSlabsInFlight?: number;
}

export const DEFAULT_MAX_SLABS_IN_FLIGHT = 4;

/**
 * Pass-through that computes MD5 and SHA-512 of everything written through it
 * in worker threads. Chunks are forwarded at once; their bytes are copied into
 * shared slabs which the workers hash while the destination writes. The stream
 * only stops reading when `maxSlabsInFlight` slabs are still being hashed.
 */
export class DigestStream extends Transform {
  readonly maxSlabsInFlight: number;
  private readonly pool: HashWorkerPool;
  private readonly id: number;
  private readonly outcome: Promise<DigestResult>;
  private settle!: {
    resolve: (result: DigestResult) => void;
    reject: (error: Error) => void;
  };
  private byteCount = 0;
  private slab: HashSlab | undefined;
  private slabFill = 0;
  private inFlight = 0;
  private peakInFlight = 0;
  private waitingForSlab: (() => void) | undefined;
  private finished = false;
  private copying = false;

  constructor(options: DigestStreamOptions) {
    super({ highWaterMark: options.highWaterMark });
    this.maxSlabsInFlight =
      options.maxSlabsInFlight ?? DEFAULT_MAX_SLABS_IN_FLIGHT;
    if (!Number.isInteger(this.maxSlabsInFlight) || this.maxSlabsInFlight < 1) {
      throw new RangeError('maxSlabsInFlight must be a positive integer');
    }
    this.outcome = new Promise<DigestResult>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // Callers may never ask for the result of a failed upload.
    this.outcome.catch(() => undefined);
    this.pool = options.pool;
    this.id = this.pool.open({
      onSlabReleased: () => this.onSlabReleased(),
      onFailure: (error) => this.destroy(error),
      // Between chunks (never inside copyToSlabs): the partial slab goes to the workers.
      onSlabWanted: () => {
        if (!this.copying) this.submitSlab();
      },
    });
  }

  /** Bytes that have passed through so far. */
  get bytes(): number {
    return this.byteCount;
  }

  /** Slabs held right now (the one being filled plus those being hashed). */
  get slabsInFlight(): number {
    return this.inFlight;
  }

  /** Highest slabsInFlight seen; never above maxSlabsInFlight. */
  get peakSlabsInFlight(): number {
    return this.peakInFlight;
  }

  /** Digests and size; rejects if the stream errored or was destroyed first. */
  result(): Promise<DigestResult> {
    return this.outcome;
  }

  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: TransformCallback,
  ): void {
    this.byteCount += chunk.length;
    this.push(chunk);
    this.copyToSlabs(chunk, 0, callback);
  }

  override _flush(callback: TransformCallback): void {
    if (this.slab) this.submitSlab();
    this.pool.finish(this.id).then(
      (digests) => {
        this.finished = true;
        this.settle.resolve({ ...digests, size: this.byteCount });
        callback();
      },
      (error: Error) => callback(error),
    );
  }

  override _destroy(
    error: Error | null,
    callback: (error?: Error | null) => void,
  ): void {
    if (!this.finished) {
      this.waitingForSlab = undefined;
      this.pool.cancelWait(this.id);
      if (this.slab) {
        this.pool.discard(this.slab);
        this.slab = undefined;
      }
      this.pool.abort(this.id);
      this.settle.reject(
        error ?? new Error('upload stream was closed before it finished'),
      );
    }
    callback(error);
  }

  private copyToSlabs(
    chunk: Buffer,
    offset: number,
    callback: TransformCallback,
  ): void {
    this.copying = true;
    try {
      offset = this.fill(chunk, offset, callback);
    } finally {
      this.copying = false;
    }
    if (offset === chunk.length) callback();
  }

  /** Copies from `offset`; returns chunk.length when done, else -1 (waiting for a slab). */
  private fill(
    chunk: Buffer,
    offset: number,
    callback: TransformCallback,
  ): number {
    while (offset < chunk.length) {
      if (this.destroyed) return -1;
      if (!this.slab) {
        if (this.inFlight >= this.maxSlabsInFlight) {
          this.waitingForSlab = () => this.copyToSlabs(chunk, offset, callback);
          return -1;
        }
        const slab = this.pool.acquireSlab(this.id, (given) => {
          if (this.destroyed) {
            this.pool.discard(given);
            return;
          }
          this.takeSlab(given);
          this.copyToSlabs(chunk, offset, callback);
        });
        // Every shared slab is busy: stop reading until the pool hands one over.
        if (!slab) return -1;
        this.takeSlab(slab);
      }
      const slab = this.slab!;
      const count = Math.min(
        chunk.length - offset,
        slab.view.length - this.slabFill,
      );
      copyIntoShared(
        slab.view,
        this.slabFill,
        chunk.subarray(offset, offset + count),
      );
      this.slabFill += count;
      offset += count;
      if (this.slabFill === slab.view.length) this.submitSlab();
    }
    return offset;
  }

  private takeSlab(slab: HashSlab): void {
    this.slab = slab;
    this.slabFill = 0;
    this.inFlight++;
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
  }

  private submitSlab(): void {
    if (!this.slab) return;
    this.pool.submit(this.id, this.slab, this.slabFill);
    this.slab = undefined;
    this.slabFill = 0;
  }

  private onSlabReleased(): void {
    this.inFlight--;
    const resume = this.waitingForSlab;
    this.waitingForSlab = undefined;
    resume?.();
  }
}
