import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DigestStream } from './digest.stream.js';
import { HashWorkerPool } from './hash-worker-pool.js';

const MiB = 1024 * 1024;

/** Deterministic pseudo-random generator (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function randomData(size: number, seed: number): Buffer {
  const next = prng(seed);
  const words = new Uint32Array(Math.ceil(size / 4));
  for (let i = 0; i < words.length; i++) words[i] = next();
  return Buffer.from(words.buffer, 0, size);
}

/** Splits data into chunks of 1..maxChunk bytes chosen by the seed. */
function randomChunks(data: Buffer, seed: number, maxChunk: number): Buffer[] {
  const next = prng(seed);
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < data.length;) {
    const size = 1 + (next() % maxChunk);
    chunks.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

function expected(data: Buffer) {
  return {
    md5: createHash('md5').update(data).digest('hex'),
    sha512: createHash('sha512').update(data).digest('hex'),
    size: data.length,
  };
}

/** Writable that hashes what it receives, so output can be compared to input. */
class HashingSink extends Writable {
  private readonly md5 = createHash('md5');
  size = 0;

  constructor(private readonly onWrite: (chunk: Buffer) => void = () => {}) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.md5.update(chunk);
    this.size += chunk.length;
    this.onWrite(chunk);
    cb();
  }

  outputMd5(): string {
    return this.md5.digest('hex');
  }
}

async function digestOf(
  chunks: Buffer[],
  pool: HashWorkerPool,
  maxSlabsInFlight?: number,
) {
  const digest = new DigestStream({ pool, maxSlabsInFlight });
  const sink = new HashingSink();
  await pipeline(Readable.from(chunks), digest, sink);
  return {
    result: await digest.result(),
    output: { md5: sink.outputMd5(), size: sink.size },
    digest,
  };
}

describe('DigestStream', () => {
  let pool: HashWorkerPool;

  beforeAll(() => {
    pool = new HashWorkerPool();
  });

  afterAll(async () => {
    await pool.close();
  });

  it('hashes an empty stream', async () => {
    const { result } = await digestOf([], pool);
    expect(result).toEqual({
      md5: 'd41d8cd98f00b204e9800998ecf8427e',
      sha512:
        'cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce' +
        '47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e',
      size: 0,
    });
  });

  it.each([
    ['one byte', 1],
    ['one slab minus one', MiB - 1],
    ['exactly one slab', MiB],
    ['one slab plus one', MiB + 1],
    ['three slabs plus one', 3 * MiB + 1],
  ])('hashes %s and passes the bytes through', async (_name, size) => {
    expect(pool.slabSize).toBe(MiB);
    const data = randomData(size, size);
    const { result, output } = await digestOf(
      randomChunks(data, 7, 64 * 1024),
      pool,
    );
    expect(result).toEqual(expected(data));
    expect(output).toEqual({ md5: expected(data).md5, size });
  });

  it('hashes ~20 MiB of random-sized chunks and counts bytes', async () => {
    const data = randomData(20 * MiB + 12345, 42);
    const chunks = randomChunks(data, 43, 200 * 1024);
    const digest = new DigestStream({ pool });
    const seen: number[] = [];
    const sink = new HashingSink(() => seen.push(digest.bytes));
    await pipeline(Readable.from(chunks), digest, sink);

    expect(await digest.result()).toEqual(expected(data));
    expect(sink.outputMd5()).toBe(expected(data).md5);
    expect(digest.bytes).toBe(data.length);
    expect(seen.length).toBe(chunks.length);
    expect(seen.every((bytes, i) => i === 0 || bytes > seen[i - 1])).toBe(true);
  });

  it('handles chunks far larger than a slab with a tight slab bound', async () => {
    const small = new HashWorkerPool({ slabSize: 1000 });
    try {
      const data = randomData(3 * MiB + 17, 5);
      const { result, output, digest } = await digestOf(
        randomChunks(data, 6, 256 * 1024),
        small,
        2,
      );
      expect(result).toEqual(expected(data));
      expect(output.md5).toBe(expected(data).md5);
      expect(digest.peakSlabsInFlight).toBe(2);
      expect(small.allocatedSlabs).toBeLessThanOrEqual(2);
    } finally {
      await small.close();
    }
  });

  it('keeps 20 concurrent streams apart', async () => {
    const inputs = Array.from({ length: 20 }, (_, i) =>
      randomData(i * 300 * 1024 + i, 100 + i),
    );
    const runs = await Promise.all(
      inputs.map((data, i) =>
        digestOf(randomChunks(data, 200 + i, 96 * 1024), pool),
      ),
    );
    runs.forEach(({ result, output }, i) => {
      expect(result).toEqual(expected(inputs[i]));
      expect(output.md5).toBe(expected(inputs[i]).md5);
    });
    expect(pool.activeStreams).toBe(0);
  });

  it('rejects result() and frees worker state when the source fails', async () => {
    const block = randomData(64 * 1024, 9);
    let sent = 0;
    const source = new Readable({
      read() {
        if (sent === 5 * MiB + 64 * 1024) {
          this.destroy(new Error('client went away'));
          return;
        }
        sent += block.length;
        this.push(block);
      },
    });
    const digest = new DigestStream({ pool });
    await expect(pipeline(source, digest, new HashingSink())).rejects.toThrow(
      'client went away',
    );
    await expect(digest.result()).rejects.toThrow('client went away');
    await vi.waitFor(() => expect(pool.activeStreams).toBe(0));
  });

  it('rejects result() and frees worker state when the destination fails', async () => {
    const data = randomData(8 * MiB, 10);
    const digest = new DigestStream({ pool });
    let written = 0;
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        written += chunk.length;
        cb(written > 3 * MiB ? new Error('disk full') : null);
      },
    });
    await expect(
      pipeline(Readable.from(randomChunks(data, 11, 64 * 1024)), digest, sink),
    ).rejects.toThrow('disk full');
    await expect(digest.result()).rejects.toThrow('disk full');
    await vi.waitFor(() => expect(pool.activeStreams).toBe(0));
  });

  it('frees state of 1000 streams destroyed without an error', async () => {
    const small = new HashWorkerPool({ slabSize: 4096, maxSlabs: 16 });
    try {
      const block = randomData(3 * 4096 + 5, 12);
      const digests = Array.from({ length: 1000 }, () => {
        const digest = new DigestStream({ pool: small });
        digest.write(block);
        digest.destroy();
        return digest;
      });
      expect(small.activeStreams).toBeGreaterThan(0);
      for (const digest of digests) {
        await expect(digest.result()).rejects.toThrow(/closed before/);
      }
      await vi.waitFor(() => expect(small.activeStreams).toBe(0));
      // Never more slabs than the shared cap, all of them back once the streams are gone.
      expect(small.allocatedSlabs).toBeLessThanOrEqual(16);
    } finally {
      await small.close();
    }
  });

  it('fails open streams when the pool is closed', async () => {
    const own = new HashWorkerPool();
    const digest = new DigestStream({ pool: own });
    const errored = new Promise((resolve) => digest.once('error', resolve));
    digest.write(randomData(100, 13));
    await own.close();
    expect(await errored).toBeInstanceOf(Error);
    await expect(digest.result()).rejects.toThrow('hash worker pool closed');
    expect(digest.destroyed).toBe(true);
    expect(() => new DigestStream({ pool: own })).toThrow(/closed/);
  });

  it('starts workers with the first stream and spreads streams over them', async () => {
    const own = new HashWorkerPool({ workers: 3 });
    try {
      expect(own.runningWorkers).toBe(0);
      const inputs = Array.from({ length: 6 }, (_, i) =>
        randomData(3 * MiB + i * 1001, 100 + i),
      );
      const results = await Promise.all(
        inputs.map((data) => digestOf(randomChunks(data, 7, 64 * 1024), own)),
      );
      results.forEach(({ result }, i) => {
        expect(result).toEqual(expected(inputs[i]));
      });
      expect(own.runningWorkers).toBe(3);
    } finally {
      await own.close();
    }
  });

  it('ends idle workers after idleWorkerMs and hashes the next stream with fresh ones', async () => {
    const own = new HashWorkerPool({ workers: 2, idleWorkerMs: 100 });
    try {
      const first = randomData(2 * MiB + 7, 500);
      expect((await digestOf(randomChunks(first, 501, 64 * 1024), own)).result).toEqual(
        expected(first),
      );
      expect(own.runningWorkers).toBe(2);
      await vi.waitFor(() => expect(own.runningWorkers).toBe(0), { timeout: 2000 });
      // The slabs stay allocated for the next workers.
      expect(own.allocatedSlabs).toBeGreaterThan(0);
      const second = randomData(3 * MiB + 11, 502);
      expect((await digestOf(randomChunks(second, 503, 64 * 1024), own)).result).toEqual(
        expected(second),
      );
      expect(own.runningWorkers).toBe(2);
    } finally {
      await own.close();
    }
  });

  it('keeps its workers while a stream is open, however long it lasts', async () => {
    const own = new HashWorkerPool({ idleWorkerMs: 50 });
    try {
      const data = randomData(MiB + 3, 510);
      const digest = new DigestStream({ pool: own });
      const sink = new HashingSink();
      const source = new Readable({ read() {} });
      const done = pipeline(source, digest, sink);
      source.push(data.subarray(0, 1000));
      await new Promise((r) => setTimeout(r, 300));
      expect(own.runningWorkers).toBe(1);
      source.push(data.subarray(1000));
      source.push(null);
      await done;
      expect(await digest.result()).toEqual(expected(data));
    } finally {
      await own.close();
    }
  });

  it('fails open streams when a worker dies and hashes the next stream with new workers', async () => {
    const own = new HashWorkerPool();
    try {
      const digest = new DigestStream({ pool: own });
      const errored = new Promise((resolve) => digest.once('error', resolve));
      digest.write(randomData(2 * MiB, 15));
      // No public way to crash a worker: terminate the thread itself.
      const { workers } = own as unknown as {
        workers: { thread: { terminate(): Promise<number> } }[];
      };
      await workers[0].thread.terminate();
      expect(await errored).toBeInstanceOf(Error);
      await expect(digest.result()).rejects.toThrow(/hash worker 0 exited/);

      const data = randomData(5 * MiB + 3, 16);
      const { result } = await digestOf(randomChunks(data, 7, 64 * 1024), own);
      expect(result).toEqual(expected(data));
      expect(own.activeStreams).toBe(0);
    } finally {
      await own.close();
    }
  });

  it('keeps slabs bounded for 512 MiB into a slow consumer', async () => {
    const own = new HashWorkerPool();
    try {
      const block = randomData(MiB, 14);
      const total = 512 * MiB;
      const chunk = 64 * 1024;
      let sent = 0;
      const source = new Readable({
        read() {
          while (sent < total) {
            const offset = sent % block.length;
            sent += chunk;
            if (!this.push(block.subarray(offset, offset + chunk))) return;
          }
          this.push(null);
        },
      });
      const digest = new DigestStream({ pool: own, maxSlabsInFlight: 4 });
      let maxAllocated = 0;
      let maxInFlight = 0;
      let received = 0;
      const sample = () => {
        maxAllocated = Math.max(maxAllocated, own.allocatedSlabs);
        maxInFlight = Math.max(maxInFlight, digest.slabsInFlight);
      };
      const timer = setInterval(sample, 1);
      const slowSink = new Writable({
        write(data: Buffer, _enc, cb) {
          received += data.length;
          sample();
          // Pause for a moment every 4 MiB.
          if (received % (4 * MiB) === 0) setTimeout(cb, 2);
          else cb();
        },
      });
      try {
        await pipeline(source, digest, slowSink);
      } finally {
        clearInterval(timer);
      }

      const md5 = createHash('md5');
      const sha512 = createHash('sha512');
      for (let i = 0; i < total / MiB; i++) {
        md5.update(block);
        sha512.update(block);
      }
      expect(await digest.result()).toEqual({
        md5: md5.digest('hex'),
        sha512: sha512.digest('hex'),
        size: total,
      });
      expect(received).toBe(total);
      expect(maxInFlight).toBeLessThanOrEqual(4);
      expect(maxAllocated).toBeLessThanOrEqual(4);
      expect(digest.peakSlabsInFlight).toBeLessThanOrEqual(4);
      expect(maxAllocated).toBeGreaterThan(0);
    } finally {
      await own.close();
    }
  }, 120_000);

  it('bounds slab memory across 40 concurrent streams and hashes each correctly', async () => {
    const own = new HashWorkerPool({ slabSize: 64 * 1024, maxSlabs: 6 });
    try {
      let maxAllocated = 0;
      const timer = setInterval(() => {
        maxAllocated = Math.max(maxAllocated, own.allocatedSlabs);
      }, 1);
      const inputs = Array.from({ length: 40 }, (_, i) =>
        randomData(300 * 1024 + i * 777, 200 + i),
      );
      try {
        const results = await Promise.all(
          inputs.map((data, i) => digestOf(randomChunks(data, 300 + i, 50 * 1024), own)),
        );
        results.forEach(({ result }, i) => expect(result).toEqual(expected(inputs[i])));
      } finally {
        clearInterval(timer);
      }
      expect(maxAllocated).toBeLessThanOrEqual(6);
      expect(own.allocatedSlabs).toBe(6);
      expect(own.activeStreams).toBe(0);
    } finally {
      await own.close();
    }
  });

  it('hashes md5 and sha512 of one stream on two workers when split', async () => {
    const own = new HashWorkerPool({ workers: 2, splitAlgorithms: true });
    try {
      const inputs = [randomData(5 * MiB + 17, 300), randomData(2 * MiB - 3, 301)];
      const results = await Promise.all(
        inputs.map((data) => digestOf(randomChunks(data, 7, 64 * 1024), own)),
      );
      results.forEach(({ result }, i) => expect(result).toEqual(expected(inputs[i])));
      expect(own.runningWorkers).toBe(2);
      expect(own.activeStreams).toBe(0);
    } finally {
      await own.close();
    }
  });

  it('lets a stream through while another, silent, holds a partly filled slab', async () => {
    const own = new HashWorkerPool({ slabSize: 64 * 1024, maxSlabs: 1 });
    try {
      const silent = new DigestStream({ pool: own });
      silent.resume();
      silent.write(randomData(100, 400));
      await new Promise((r) => setTimeout(r, 20));
      const data = randomData(300 * 1024, 401);
      const { result } = await digestOf(randomChunks(data, 402, 50 * 1024), own);
      expect(result).toEqual(expected(data));
      silent.destroy();
    } finally {
      await own.close();
    }
  });
});
