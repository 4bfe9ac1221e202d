import { createCipheriv, createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageStore } from '../../src/stores/image-store.interface.js';
import { StoreError, StoreErrorCode } from '../../src/stores/store.error.js';

export interface StoreUnderTest {
  store: ImageStore;
  /** Every name the backend holds for this store (objects, segments, unfinished uploads). */
  listObjects: () => Promise<string[]>;
  cleanup: () => Promise<void>;
}

const MiB = 1024 * 1024;
/** Bytes a stalling source yields; stores should use parts/segments of at most 8 MiB so some are written by then. */
const STALL_AT = 24 * MiB;
const LARGE_SIZE = 200 * MiB + 12_345;

/**
 * Registers the behaviour every writable ImageStore must show. The store's
 * segment/part size should be at most 8 MiB, and a known size above 16 MiB
 * should be stored in segments/parts (14 MiB may be one piece).
 */
export function describeStoreContract(
  name: string,
  makeStore: () => Promise<StoreUnderTest>,
): void {
  describe(`${name} store contract`, () => {
    let ctx: StoreUnderTest;
    let store: ImageStore;

    beforeAll(async () => {
      ctx = await makeStore();
      store = ctx.store;
    });
    afterAll(async () => {
      await ctx?.cleanup();
    });

    /** Everything listed for one image id: the object itself and its segments/parts. */
    const storedFor = async (id: string) =>
      (await ctx.listObjects()).filter((entry) => entry.includes(id));

    /** Waits until pieces of `id` are stored and no more appear: the store waits for the source. */
    const writtenAndWaiting = async (id: string) => {
      let previous = '';
      await waitFor(async () => {
        const current = (await storedFor(id)).join();
        const steady = current !== '' && current === previous;
        previous = current;
        return steady;
      }, 300);
    };

    it('returns the same bytes from get as were added, with their size', async () => {
      const id = randomUUID();
      const data = generatedBytes(id, 3 * MiB + 17);
      const stored = await store.add(id, Readable.from([data]), {
        expectedSize: data.length,
      });
      expect(stored.size).toBe(data.length);
      expect(stored.location).not.toMatch(/:[^/]*@/);
      const read = await store.get(stored.location);
      expect(read.size).toBe(data.length);
      expect(await digest(read.stream)).toEqual(digestOf(data));
    });

    it('round-trips an image whose size was not announced', async () => {
      const id = randomUUID();
      const data = generatedBytes(id, 300 * 1024 + 5);
      const stored = await store.add(id, Readable.from(chunks(data, 7000)), {
        expectedSize: null,
      });
      expect(stored.size).toBe(data.length);
      const read = await store.get(stored.location);
      expect(await digest(read.stream)).toEqual(digestOf(data));
    });

    it('reports the stored size from getSize', async () => {
      const id = randomUUID();
      const data = generatedBytes(id, 123_457);
      const stored = await store.add(id, Readable.from([data]), {
        expectedSize: null,
      });
      expect(await store.getSize(stored.location)).toBe(123_457);
    });

    it('returns exactly the requested byte range', async () => {
      const id = randomUUID();
      const data = generatedBytes(id, 2 * MiB + 3);
      const stored = await store.add(id, Readable.from([data]), {
        expectedSize: data.length,
      });
      for (const range of [
        { start: 1000, end: 5000 },
        { start: 0, end: 0 },
        { start: data.length - 10, end: data.length - 1 },
      ]) {
        const read = await store.get(stored.location, range);
        const bytes = await collect(read.stream);
        expect(bytes.equals(data.subarray(range.start, range.end + 1))).toBe(
          true,
        );
      }
    });

    it('deletes an image and everything stored for it', async () => {
      const id = randomUUID();
      const data = generatedBytes(id, 20 * MiB);
      const stored = await store.add(id, Readable.from(chunks(data, MiB)), {
        expectedSize: null,
      });
      expect(await storedFor(id)).not.toEqual([]);
      await store.delete(stored.location);
      await expectStoreError(
        store.get(stored.location),
        StoreErrorCode.NotFound,
      );
      await expectStoreError(
        store.getSize(stored.location),
        StoreErrorCode.NotFound,
      );
      expect(await storedFor(id)).toEqual([]);
    });

    it('resolves when deleting an image that is already gone', async () => {
      const id = randomUUID();
      const stored = await store.add(id, Readable.from([Buffer.from('x')]), {
        expectedSize: 1,
      });
      await store.delete(stored.location);
      await expect(store.delete(stored.location)).resolves.toBeUndefined();
    });

    it.each([0, null])(
      'stores an empty stream (expectedSize %s)',
      async (expectedSize) => {
        const id = randomUUID();
        const stored = await store.add(id, Readable.from([]), { expectedSize });
        expect(stored.size).toBe(0);
        expect(await store.getSize(stored.location)).toBe(0);
        const read = await store.get(stored.location);
        expect((await collect(read.stream)).length).toBe(0);
      },
    );

    it('rejects locations that are not its own with BAD_LOCATION', async () => {
      for (const location of ['file:///tmp/x', `${store.schemes[0]}://`]) {
        await expectStoreError(store.get(location), StoreErrorCode.BadLocation);
      }
    });

    it('rejects an add whose signal is already aborted and writes nothing', async () => {
      const id = randomUUID();
      const signal = AbortSignal.abort();
      const data = Readable.from([Buffer.from('abc')]);
      await expect(
        store.add(id, data, { expectedSize: 3, signal }),
      ).rejects.toBeDefined();
      expect(await storedFor(id)).toEqual([]);
    });

    it.each([
      ['unknown size', STALL_AT, null],
      ['announced size, one piece', 12 * MiB, 14 * MiB],
    ])(
      'rejects an add aborted mid-stream (%s) and leaves nothing behind',
      async (_label, stallAt, expectedSize) => {
        const id = randomUUID();
        const source = stallingSource(id, stallAt);
        const controller = new AbortController();
        const adding = store.add(id, source.stream, {
          expectedSize,
          signal: controller.signal,
        });
        adding.catch(() => {});
        await waitFor(async () => source.produced() === stallAt);
        if (expectedSize === null) await writtenAndWaiting(id);
        else await sleep(300);
        controller.abort(new Error('client went away'));
        await expect(within(adding, 5000)).rejects.not.toThrow(TIMED_OUT);
        expect(await storedFor(id)).toEqual([]);
      },
      60_000,
    );

    it('rejects an add whose source fails mid-way and leaves nothing behind', async () => {
      const id = randomUUID();
      const source = stallingSource(id, STALL_AT);
      const adding = store.add(id, source.stream, { expectedSize: null });
      adding.catch(() => {});
      await waitFor(async () => source.produced() === STALL_AT);
      await writtenAndWaiting(id);
      source.stream.destroy(new Error('upload connection reset'));
      await expect(within(adding, 5000)).rejects.toThrow(
        'upload connection reset',
      );
      expect(await storedFor(id)).toEqual([]);
    }, 60_000);

    describe("removePartial (the upload's process died)", () => {
      /**
       * Another handle on the same backend, as a restarted process would have:
       * the add left hanging on it is never finished, aborted or allowed to
       * fail, so the store's own clean-up never runs.
       */
      const deadProcessStore = (): ImageStore =>
        Object.assign(Object.create(Object.getPrototypeOf(store)), store);

      it('removes the pieces of an add that stopped mid-stream, and nothing else', async () => {
        expect(store.removePartial).toBeTypeOf('function');
        const keptId = randomUUID();
        const kept = generatedBytes(keptId, 10 * MiB);
        const keptStored = await store.add(
          keptId,
          Readable.from(chunks(kept, MiB)),
          { expectedSize: null },
        );

        const id = randomUUID();
        const source = stallingSource(id, STALL_AT);
        const hanging = deadProcessStore().add(id, source.stream, {
          expectedSize: null,
        });
        hanging.catch(() => {});
        await waitFor(async () => source.produced() === STALL_AT);
        await writtenAndWaiting(id);

        await store.removePartial!(id);
        expect(await storedFor(id)).toEqual([]);
        const read = await store.get(keptStored.location);
        expect(await digest(read.stream)).toEqual(digestOf(kept));

        // Let the hanging add go; whatever it does now must not bring pieces back.
        source.stream.destroy(new Error('process is gone'));
        await expect(within(hanging, 5000)).rejects.toThrow('process is gone');
        expect(await storedFor(id)).toEqual([]);
        await store.delete(keptStored.location);
      }, 60_000);

      it('removes an image the store finished but the registry never recorded', async () => {
        const id = randomUUID();
        const data = generatedBytes(id, 10 * MiB);
        await deadProcessStore().add(id, Readable.from(chunks(data, MiB)), {
          expectedSize: null,
        });
        expect(await storedFor(id)).not.toEqual([]);
        await store.removePartial!(id);
        expect(await storedFor(id)).toEqual([]);
      }, 60_000);

      it('resolves when nothing was stored for the image', async () => {
        await expect(
          store.removePartial!(randomUUID()),
        ).resolves.toBeUndefined();
      });
    });

    it('round-trips a ~200 MiB image stored in segments/parts', async () => {
      const id = randomUUID();
      const source = generatedStream(id, LARGE_SIZE);
      let started = Date.now();
      let memory = peakMemory();
      const stored = await store.add(id, source.stream, {
        expectedSize: LARGE_SIZE,
      });
      const addMs = Date.now() - started;
      const addPeak = memory.stop();
      // Holding the whole image would add at least 200 MiB.
      expect(addPeak).toBeLessThan(150);
      expect(stored.size).toBe(LARGE_SIZE);
      const pieces = (await storedFor(id)).filter(
        (entry) => !entry.endsWith(id),
      );
      expect(pieces.length).toBeGreaterThan(1);

      started = Date.now();
      memory = peakMemory();
      const read = await store.get(stored.location);
      expect(read.size).toBe(LARGE_SIZE);
      expect(await digest(read.stream)).toEqual({
        size: LARGE_SIZE,
        sha256: source.sha256(),
      });
      const getMs = Date.now() - started;
      const getPeak = memory.stop();
      expect(getPeak).toBeLessThan(150);
      console.log(
        `${name}: 200 MiB add ${addMs} ms (buffers peak +${addPeak} MiB), ` +
          `get ${getMs} ms (+${getPeak} MiB), ${pieces.length} pieces`,
      );

      // A range that crosses the first 8 MiB boundary must come back intact.
      const start = 8 * MiB - 100;
      const ranged = await store.get(stored.location, {
        start,
        end: start + 199,
      });
      const expected = generatedBytes(id, start + 200).subarray(start);
      expect((await collect(ranged.stream)).equals(expected)).toBe(true);

      await store.delete(stored.location);
      expect(await storedFor(id)).toEqual([]);
    }, 300_000);

    it('keeps concurrent adds of different ids apart', async () => {
      const ids = [0, 1, 2, 3].map(() => randomUUID());
      const datas = ids.map((id, i) => generatedBytes(id, 10 * MiB + i * 1000));
      const stored = await Promise.all(
        ids.map((id, i) =>
          store.add(id, Readable.from(chunks(datas[i], 256 * 1024)), {
            expectedSize: null,
          }),
        ),
      );
      expect(new Set(stored.map((s) => s.location)).size).toBe(ids.length);
      for (const [i, s] of stored.entries()) {
        expect(s.size).toBe(datas[i].length);
        const read = await store.get(s.location);
        expect(await digest(read.stream)).toEqual(digestOf(datas[i]));
      }
    }, 120_000);
  });
}

/** Deterministic pseudo-random bytes: the AES-CTR keystream of a key derived from `seed`. */
function keystream(seed: string) {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
}

const zeros = Buffer.alloc(MiB);

function generatedBytes(seed: string, size: number): Buffer {
  const cipher = keystream(seed);
  const parts: Buffer[] = [];
  for (let left = size; left > 0; left -= MiB) {
    parts.push(cipher.update(zeros.subarray(0, Math.min(MiB, left))));
  }
  return Buffer.concat(parts, size);
}

/** A stream of `size` generated bytes that hashes what it hands out. */
function generatedStream(seed: string, size: number) {
  const cipher = keystream(seed);
  const hash = createHash('sha256');
  let left = size;
  const stream = new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const chunk = cipher.update(zeros.subarray(0, Math.min(MiB, left)));
      left -= chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, sha256: () => hash.digest('hex') };
}

/** Yields `limit` generated bytes, then neither data nor an end: a client gone quiet. */
function stallingSource(seed: string, limit: number) {
  const cipher = keystream(seed);
  let produced = 0;
  const stream = new Readable({
    read() {
      if (produced >= limit) return;
      const chunk = cipher.update(
        zeros.subarray(0, Math.min(MiB, limit - produced)),
      );
      produced += chunk.length;
      this.push(chunk);
    },
  });
  return { stream, produced: () => produced };
}

function* chunks(data: Buffer, size: number): Generator<Buffer> {
  for (let at = 0; at < data.length; at += size)
    yield data.subarray(at, at + size);
}

function digestOf(data: Buffer) {
  return {
    size: data.length,
    sha256: createHash('sha256').update(data).digest('hex'),
  };
}

async function digest(stream: Readable) {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { size, sha256: hash.digest('hex') };
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk);
  return Buffer.concat(parts);
}

async function expectStoreError(
  promise: Promise<unknown>,
  code: StoreErrorCode,
) {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(StoreError);
  expect((error as StoreError).code).toBe(code);
}

async function waitFor(condition: () => Promise<boolean>, intervalMs = 100) {
  const deadline = Date.now() + 20_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(intervalMs);
  }
}

/** Samples Buffer memory until stopped; returns the largest growth in MiB. */
function peakMemory() {
  const base = process.memoryUsage().arrayBuffers;
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  }, 20);
  return {
    stop: () => {
      clearInterval(timer);
      const last = process.memoryUsage().arrayBuffers;
      return Math.round((Math.max(peak, last) - base) / MiB);
    },
  };
}

const TIMED_OUT = 'did not settle in time';

/** `promise`, or a rejection with TIMED_OUT when it takes longer than `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(TIMED_OUT)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Asserts that `promise` rejects with a StoreError of `code`. */
export async function expectCode(
  promise: Promise<unknown>,
  code: StoreErrorCode,
): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(StoreError);
  expect((error as StoreError).code).toBe(code);
}
