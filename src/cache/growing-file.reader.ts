import type { FileHandle } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImageSizeMismatchError } from '../stores/file-image.reader.js';
import type { ImageReader } from '../stores/image-store.interface.js';
import { drainOrClose, writeChunk } from '../common/writable-ops.js';
import {
  giveBackReadBuffers,
  READ_CHUNK,
  READ_SLOTS,
  takeReadBuffers,
} from '../stores/read-buffer-pool.js';

/** How often a reader that caught up with the filler looks for more bytes. */
const POLL_MS = 5;


/** What a reader of a growing file needs to know about the fill it follows. */
export interface FillWatch {
  /** True while the filling process is alive (the fill may still grow). */
  fillerAlive(): boolean;
  /** Milliseconds without growth after which a fill whose process is gone counts as dead. */
  stallMs: number;
  /** The rest of the image from the store, from `offset` (when the fill is abandoned). */
  fromStore(offset: number): Promise<Readable>;
  /** Called once with the bytes this reader took from the file and from the store. */
  done(fromCache: number, fromStore: number, complete: boolean): void;
}

/**
 * Follows `incomplete/<id>` while another request (in this process or
 * another worker) fills it: sends what is written, waits for more, and stops
 * at the image's size. The handle stays valid across the filler's rename into
 * place. When the filler gives up (the file is unlinked, or it stops growing
 * and its process is gone) the rest comes from the store by byte range, so
 * the client's download completes either way. Also serves complete entries
 * (a hit is a fill that is already over).
 */
export class GrowingFileReader implements ImageReader {
  constructor(
    private readonly handle: FileHandle,
    readonly size: number,
    private readonly watch: FillWatch,
  ) {}

  async pipeTo(out: Writable, expected: number): Promise<number> {
    // The file store's shared read pool: a boot storm has many readers at once.
    const buffers = takeReadBuffers();
    const inFlight: Promise<void>[] = buffers.map(() => Promise.resolve());
    let sent = 0;
    let fromStore = 0;
    let slot = 0;
    let lastGrowth = Date.now();
    try {
      while (sent < expected) {
        await inFlight[slot];
        const buffer = buffers[slot];
        const { bytesRead } = await this.handle.read(
          buffer,
          0,
          Math.min(READ_CHUNK, expected - sent),
          sent,
        );
        if (out.destroyed) throw new Error('destination closed');
        if (bytesRead === 0) {
          const { nlink } = await this.handle.stat();
          const quiet = Date.now() - lastGrowth;
          // Unlinked: the filler gave up. Quiet with its process gone, or far too long: it died or hangs.
          if (nlink === 0) break;
          if (
            quiet > this.watch.stallMs &&
            (!this.watch.fillerAlive() || quiet > 4 * this.watch.stallMs)
          )
            break;
          await sleep(POLL_MS);
          continue;
        }
        lastGrowth = Date.now();
        inFlight[slot] = writeChunk(out, buffer.subarray(0, bytesRead));
        sent += bytesRead;
        if (out.writableNeedDrain) await drainOrClose(out);
        slot = (slot + 1) % READ_SLOTS;
      }
      await Promise.all(inFlight);
      if (sent < expected) {
        // The fill was abandoned: the rest from the store, by byte range.
        const rest = await this.watch.fromStore(sent);
        for await (const chunk of rest as AsyncIterable<Buffer>) {
          if (out.destroyed) {
            rest.destroy();
            throw new Error('destination closed');
          }
          if (sent + fromStore + chunk.length > expected) {
            rest.destroy();
            throw new ImageSizeMismatchError(
              expected,
              sent + fromStore + chunk.length,
            );
          }
          fromStore += chunk.length;
          if (!out.write(chunk)) await drainOrClose(out);
        }
        if (sent + fromStore !== expected)
          throw new ImageSizeMismatchError(expected, sent + fromStore);
      }
      return sent + fromStore;
    } finally {
      await Promise.allSettled(inFlight);
      giveBackReadBuffers(buffers);
      await this.close();
      this.watch.done(sent, fromStore, sent + fromStore === expected);
    }
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}
