import { describe, expect, it } from 'vitest';
import {
  giveBackReadBuffers,
  READ_CHUNK,
  READ_SLOTS,
  takeReadBuffers,
} from './read-buffer-pool.js';

describe('read buffer pool', () => {
  it('hands the buffers of an ended download to the next one instead of allocating', () => {
    const first = takeReadBuffers();
    expect(first).toHaveLength(READ_SLOTS);
    for (const b of first) expect(b.length).toBe(READ_CHUNK);
    giveBackReadBuffers(first);
    const next = takeReadBuffers();
    expect(new Set(next)).toEqual(new Set(first));
    giveBackReadBuffers(next);
  });

  it('keeps two downloads worth between bursts and lets the rest go', () => {
    const burst = Array.from({ length: 16 }, () => takeReadBuffers());
    for (const buffers of burst) giveBackReadBuffers(buffers);
    const all = new Set(burst.flat());
    const after = Array.from({ length: 4 }, () => takeReadBuffers()).flat();
    const reused = after.filter((b) => all.has(b));
    expect(reused).toHaveLength(2 * READ_SLOTS);
    giveBackReadBuffers(after);
  });
});
