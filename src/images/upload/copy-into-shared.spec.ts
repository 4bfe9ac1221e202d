import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { copyIntoShared } from './copy-into-shared.js';

describe('copyIntoShared', () => {
  const data = randomBytes(200_000);

  it.each([
    [0, 0, 1],
    [0, 3, 65_536],
    [5, 0, 65_536],
    [3, 3, 100_000],
    [1, 6, 150_001],
    [7, 2, 7],
  ])(
    'copies source offset %i to target offset %i, %i bytes, and nothing else',
    (from, at, length) => {
      const target = new Uint8Array(new SharedArrayBuffer(160_000));
      target.fill(0xee);
      const source = data.subarray(from, from + length);
      copyIntoShared(target, at, source);
      expect(Buffer.from(target.subarray(at, at + length)).equals(source)).toBe(
        true,
      );
      expect(target.subarray(0, at).every((b) => b === 0xee)).toBe(true);
      expect(target.subarray(at + length).every((b) => b === 0xee)).toBe(true);
    },
  );

  it('copies into a view that starts inside its shared buffer', () => {
    const shared = new SharedArrayBuffer(70_000);
    const target = new Uint8Array(shared, 4, 69_000);
    const source = data.subarray(1, 68_001);
    copyIntoShared(target, 9, source);
    expect(Buffer.from(shared, 13, 68_000).equals(source)).toBe(true);
  });
});
