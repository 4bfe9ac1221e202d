import { createHash, randomFillSync } from 'node:crypto';
import {
  closeSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { MiB } from './stats.mjs';

const CHUNK = 4 * MiB;

/**
 * Returns `{ path, size, md5 }` for a file of `sizeMiB` random bytes under
 * `dir`, generating it only when missing or of the wrong size. The md5 is
 * cached beside it, keyed by size and mtime.
 */
export function ensureInputFile(dir, sizeMiB, log) {
  const size = sizeMiB * MiB;
  const path = join(dir, `input-${sizeMiB}MiB.bin`);
  const md5Path = `${path}.md5.json`;
  const existing = statOrNull(path);
  if (existing && existing.size === size) {
    const cached = readJsonOrNull(md5Path);
    if (cached && cached.size === size && cached.mtimeMs === existing.mtimeMs) {
      return { path, size, md5: cached.md5, generated: false };
    }
    log(`hashing existing ${path}`);
    const md5 = md5OfFile(path);
    writeFileSync(
      md5Path,
      JSON.stringify({ size, mtimeMs: existing.mtimeMs, md5 }),
    );
    return { path, size, md5, generated: false };
  }

  log(`generating ${sizeMiB} MiB of random data at ${path}`);
  const started = performance.now();
  const tmp = `${path}.tmp`;
  const hash = createHash('md5');
  const buf = Buffer.allocUnsafe(CHUNK);
  const fd = openSync(tmp, 'w');
  try {
    for (let written = 0; written < size;) {
      const n = Math.min(CHUNK, size - written);
      const chunk = buf.subarray(0, n);
      randomFillSync(chunk);
      hash.update(chunk);
      for (let off = 0; off < n;) off += writeSync(fd, chunk, off, n - off);
      written += n;
    }
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const md5 = hash.digest('hex');
  writeFileSync(
    md5Path,
    JSON.stringify({ size, mtimeMs: statSync(path).mtimeMs, md5 }),
  );
  log(`generated in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return { path, size, md5, generated: true };
}

function md5OfFile(path) {
  const hash = createHash('md5');
  const buf = Buffer.allocUnsafe(CHUNK);
  const fd = openSync(path, 'r');
  try {
    let pos = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

function statOrNull(path) {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

function readJsonOrNull(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
}
