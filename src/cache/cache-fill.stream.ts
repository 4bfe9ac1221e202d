import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';

/** How a fill ends: committed as an entry, moved to invalid/, or abandoned. */
export interface FillOutcome {
  /** Called with the md5 and byte count once every byte went through; commits or invalidates. */
  finish(md5: string, bytes: number): Promise<void>;
  /** The cache file could not be written: the fill stops, the download goes on. */
  writeFailed(err: Error): void;
  /** The transfer ended early (client gone, store failed): nothing may stay behind. */
  abandon(): void;
}

/**
 * Tees a store stream: every chunk goes on to the client and, at the same
 * time, into `incomplete/<id>` (position-addressed writes on a handle opened
 * with O_EXCL, which is the fill lock). A chunk is passed on only after it is
 * on disk, so readers following the file never wait long for it, and memory
 * is bounded by the stream's high-water marks. A write error stops the
 * caching, never the download.
 */
export class CacheFillStream extends Transform {
  private readonly md5: Hash = createHash('md5');
  private bytes = 0;
  /** Bytes on disk: the client never has a byte before the cache file has it. */
  private written = 0;
  private failed = false;
  private finished = false;

  /** Bytes that came through from the store. */
  get bytesIn(): number {
    return this.bytes;
  }

  constructor(
    private readonly handle: FileHandle,
    private readonly outcome: FillOutcome,
    private readonly expectedSize: number,
  ) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _transform(
    chunk: Buffer,
    _enc: BufferEncoding,
    done: TransformCallback,
  ): void {
    this.md5.update(chunk);
    const position = this.bytes;
    this.bytes += chunk.length;
    if (this.failed) return done(null, chunk);
    this.handle.write(chunk, 0, chunk.length, position).then(
      () => {
        this.written += chunk.length;
        done(null, chunk);
      },
      (err: Error) => {
        this.fail(err);
        done(null, chunk);
      },
    );
  }

  override _flush(done: TransformCallback): void {
    if (this.failed) {
      this.finished = true;
      return done();
    }
    void this.commit().finally(() => done());
  }

  override _destroy(
    err: Error | null,
    done: (error: Error | null) => void,
  ): void {
    if (!this.finished && !this.failed) {
      if (this.written === this.expectedSize) {
        // Every byte is on disk: a client that hangs up as soon as it has the
        // whole body (curl, Content-Length) may beat the store's end signal.
        void this.commit();
      } else {
        this.failed = true;
        void this.handle.close().catch(() => undefined);
        this.outcome.abandon();
      }
    }
    done(err);
  }

  /** Closes the file and lets the outcome decide (md5 and size) whether it becomes an entry. */
  private commit(): Promise<void> {
    this.finished = true;
    return this.handle
      .close()
      .then(() => this.outcome.finish(this.md5.digest('hex'), this.bytes))
      .catch((err: Error) => this.outcome.writeFailed(err));
  }

  private fail(err: Error): void {
    this.failed = true;
    void this.handle.close().catch(() => undefined);
    this.outcome.writeFailed(err);
  }
}
