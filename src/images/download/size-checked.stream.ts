import { Transform, type TransformCallback } from 'node:stream';
import { noteReceivedBytes } from '../../common/received-buffer-collector.js';
import { ImageSizeMismatchError } from '../../stores/file-image.reader.js';

/**
 * Glance's size_checked_iter: the download fails (and the client sees a short
 * body) when the store yields fewer or more bytes than the recorded size.
 * A chunk that would overrun is never forwarded, so a client can never
 * receive a complete-looking but wrong body.
 */
export class SizeCheckedStream extends Transform {
  private sent = 0;

  constructor(private readonly expected: number) {
    super();
  }

  get bytesSent(): number {
    return this.sent;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.sent + chunk.length > this.expected) {
      return done(new ImageSizeMismatchError(this.expected, this.sent + chunk.length));
    }
    this.sent += chunk.length;
    // Store responses arrive as fresh buffers too (see noteReceivedBytes): with
    // many downloads from Swift/S3/HTTP at once, dead chunks would pile up.
    noteReceivedBytes(chunk.length);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    done(this.sent === this.expected ? null : new ImageSizeMismatchError(this.expected, this.sent));
  }
}
