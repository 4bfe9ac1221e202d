import type { FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { ImageReader } from './image-store.interface.js';
import { drainOrClose, writeChunk } from '../common/writable-ops.js';
import {
  giveBackReadBuffers,
  READ_CHUNK,
  READ_SLOTS,
  takeReadBuffers,
} from './read-buffer-pool.js';

/** The stored bytes do not match the size the caller expects. */
export class ImageSizeMismatchError extends Error {
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`expected ${expected} bytes, store holds ${actual}${actual > expected ? '+' : ''}`);
    this.name = 'ImageSizeMismatchError';
  }
}

/**
 * Sends a file with READ_SLOTS buffers of the shared read pool: a buffer is read into again
 * only after the destination's write callback said it is done with it. A
 * file shorter or longer than expected fails before its last chunk is sent,
 * so a client never receives a complete-looking wrong body.
 */
export class FileImageReader implements ImageReader {
  constructor(
    private readonly handle: FileHandle,
    readonly size: number,
  ) {}

  async pipeTo(out: Writable, expected: number): Promise<number> {
    const buffers = takeReadBuffers();
    const inFlight: Promise<void>[] = buffers.map(() => Promise.resolve());
    let sent = 0;
    let slot = 0;
    try {
      while (sent < expected) {
        await inFlight[slot];
        const buffer = buffers[slot];
        const { bytesRead } = await this.handle.read(buffer, 0, Math.min(READ_CHUNK, expected - sent), sent);
        if (bytesRead === 0) throw new ImageSizeMismatchError(expected, sent);
        if (sent + bytesRead === expected) await this.assertEndsAt(expected);
        if (out.destroyed) throw new Error('destination closed');
        inFlight[slot] = writeChunk(out, buffer.subarray(0, bytesRead));
        sent += bytesRead;
        if (out.writableNeedDrain) await drainOrClose(out);
        slot = (slot + 1) % READ_SLOTS;
      }
      await Promise.all(inFlight);
      return sent;
    } finally {
      // Only once the socket is done with every buffer may another download refill them.
      await Promise.allSettled(inFlight);
      giveBackReadBuffers(buffers);
      await this.close();
    }
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }

  private async assertEndsAt(expected: number): Promise<void> {
    const probe = Buffer.allocUnsafe(1);
    const { bytesRead } = await this.handle.read(probe, 0, 1, expected);
    if (bytesRead > 0) throw new ImageSizeMismatchError(expected, expected + 1);
  }
}
