import { Readable } from 'node:stream';

/**
 * Cuts one source stream into consecutive pieces (Swift segments, S3 parts)
 * while holding at most the chunk being split. A source error is kept in
 * `sourceError` so the store can report the real cause after cleaning up.
 */
export class ChunkReader {
  /** Bytes handed out so far. */
  total = 0;
  sourceError: unknown;
  private readonly iterator: AsyncIterator<Buffer | string>;
  private pending: Buffer | null = null;
  private abandoned = false;

  constructor(private readonly source: Readable) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** True once the source has ended with nothing left to hand out. */
  async atEnd(): Promise<boolean> {
    this.pending ??= await this.next();
    return this.pending === null;
  }

  /** The next `size` bytes in one buffer (fewer at the end, empty after it). */
  async read(size: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.take(size)) chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  /** A stream of the next `limit` bytes (fewer at the end), read lazily. */
  stream(limit: number): Readable {
    return Readable.from(this.take(limit), { objectMode: false });
  }

  /** Stops reading; destroying the source also ends a read that waits for data. */
  abandon(): void {
    this.abandoned = true;
    this.source.destroy();
  }

  private async *take(limit: number): AsyncGenerator<Buffer> {
    let left = limit;
    while (left > 0) {
      const chunk = this.pending ?? (await this.next());
      this.pending = chunk && chunk.length > left ? chunk.subarray(left) : null;
      if (!chunk) return;
      const part = chunk.subarray(0, left);
      left -= part.length;
      this.total += part.length;
      yield part;
    }
  }

  private async next(): Promise<Buffer | null> {
    try {
      for (;;) {
        const { done, value } = await this.iterator.next();
        if (done) return null;
        const chunk = Buffer.isBuffer(value) ? value : Buffer.from(value);
        if (chunk.length > 0) return chunk;
      }
    } catch (err) {
      if (!this.abandoned) this.sourceError = err;
      throw err;
    }
  }
}
