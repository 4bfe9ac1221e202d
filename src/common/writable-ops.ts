import type { Writable } from 'node:stream';

/** Writes `chunk`; settles when the stream took it (or failed). */
export function writeChunk(out: Writable, chunk: Buffer): Promise<void> {
  const done = new Promise<void>((resolve, reject) => {
    out.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
  // Observed later by Promise.all/allSettled; never an unhandled rejection.
  done.catch(() => undefined);
  return done;
}

/** Resolves when `out` wants more data or is gone. */
export function drainOrClose(out: Writable): Promise<void> {
  return new Promise((resolve) => {
    const finish = () => {
      out.off('drain', finish);
      out.off('close', finish);
      resolve();
    };
    out.on('drain', finish);
    out.on('close', finish);
  });
}
