import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Node hands every request-body chunk to JS as a freshly allocated buffer.
 * They die within milliseconds, but V8 frees them only when a GC finds them
 * dead, and a stream allocates so little JS heap per chunk that scavenges are
 * rare: an upload would carry 30-60 MiB of dead chunks. Chunks still queued
 * for the disk when a scavenge runs get promoted and then wait for a full GC,
 * which V8 only starts after ~64 MiB of such garbage.
 *
 * So after every `COLLECT_EVERY_BYTES` received (across all uploads) this runs
 * a minor GC (well under a millisecond: almost nothing survives), and a full
 * one when buffer memory is still above `MAX_BUFFER_BYTES` after it (rare:
 * about once per GiB of chunked upload).
 */
const COLLECT_EVERY_BYTES = 8 * 1024 * 1024;
const MAX_BUFFER_BYTES = 24 * 1024 * 1024;

type GcFunction = (options: { type: 'minor' | 'major' }) => void;

function exposeGc(): GcFunction | undefined {
  const existing = (globalThis as { gc?: GcFunction }).gc;
  if (existing) return existing;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as GcFunction;
  } catch {
    return undefined;
  }
}

const gc = exposeGc();
let sinceLastCollection = 0;

/** Counts body bytes handed to JS and collects the dead ones periodically. */
export function noteReceivedBytes(count: number): void {
  if (!gc) return;
  sinceLastCollection += count;
  if (sinceLastCollection < COLLECT_EVERY_BYTES) return;
  sinceLastCollection = 0;
  gc({ type: 'minor' });
  if (process.memoryUsage().arrayBuffers > MAX_BUFFER_BYTES) {
    gc({ type: 'major' });
  }
}
