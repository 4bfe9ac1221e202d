import { Transform, type TransformCallback } from 'node:stream';
import { noteReceivedBytes } from '../../common/received-buffer-collector.js';

/** Raised when a stream carries more bytes than allowed (size cap or storage quota). */
export class ByteLimitExceededError extends Error {
  constructor(
    readonly limit: number,
    readonly reason: 'size_cap' | 'quota',
  ) {
    super(`more than ${limit} bytes`);
    this.name = 'ByteLimitExceededError';
  }
}

/**
 * Passes bytes through until `limit` is crossed, then fails the stream before
 * the offending chunk reaches the store (Glance's LimitingReader).
 */
export class ByteLimitStream extends Transform {
  private seen = 0;

  constructor(
    private readonly limit: number,
    private readonly reason: 'size_cap' | 'quota' = 'size_cap',
  ) {
    super();
  }

  get bytes(): number {
    return this.seen;
  }

  override _transform(
    chunk: Buffer,
    _enc: BufferEncoding,
    done: TransformCallback,
  ): void {
    this.seen += chunk.length;
    noteReceivedBytes(chunk.length);
    if (this.seen > this.limit)
      return done(new ByteLimitExceededError(this.limit, this.reason));
    done(null, chunk);
  }
}
