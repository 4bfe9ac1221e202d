import { Worker } from 'node:worker_threads';

/** A fixed-size shared buffer that the hash workers read without copying. */
export interface HashSlab {
  readonly index: number;
  readonly view: Uint8Array;
}

export interface HashDigests {
  md5: string;
  sha512: string;
}

export interface HashStreamHandlers {
  /** A slab submitted by this stream has been hashed. */
  onSlabReleased(): void;
  /** The pool failed (a worker died or the pool was closed); the stream cannot finish. */
  onFailure(error: Error): void;
  /** Other streams wait for slabs: hand over the partly filled one now. */
  onSlabWanted?(): void;
}

export interface HashWorkerPoolOptions {
  /** Worker threads; each stream is hashed (md5 and sha512) by one of them. */
  workers?: number;
  /** Bytes per slab; every update message hashes up to this many bytes. */
  slabSize?: number;
  /**
   * Slabs the pool ever allocates, shared by every stream. They are kept and
   * reused, never dropped: slab memory is `maxSlabs × slabSize` at most,
   * whatever the number of uploads; a stream that finds none free waits (and
   * stops reading its source) until one is released.
   */
  maxSlabs?: number;
  /** Hash md5 and sha512 of one stream on two workers at once (needs workers >= 2). */
  splitAlgorithms?: boolean;
  /** Milliseconds without an open stream after which the workers end (DEFAULT_IDLE_WORKER_MS). */
  idleWorkerMs?: number;
}

export const DEFAULT_SLAB_SIZE = 1024 * 1024;
export const DEFAULT_MAX_SLABS = 8;
/**
 * Workers idle this long are ended: each is a whole isolate (~12 MiB), and
 * the service should give that back after a burst of uploads.
 */
export const DEFAULT_IDLE_WORKER_MS = 3000;
type Algorithm = 'md5' | 'sha512';

// Plain CommonJS so it runs via `eval: true` from dist/ and under Vitest alike.
// Messages from one port arrive in order, so a stream's updates always precede
// its final/drop, and a slab's registration precedes its first update.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const slabs = new Map();
const hashes = new Map();
function hashesFor(id, algos) {
  let pair = hashes.get(id);
  if (pair === undefined) {
    pair = algos.map((a) => [a, createHash(a)]);
    hashes.set(id, pair);
  }
  return pair;
}
parentPort.on('message', (m) => {
  switch (m.op) {
    case 'slab':
      slabs.set(m.slab, new Uint8Array(m.buffer));
      break;
    case 'update': {
      const bytes = slabs.get(m.slab).subarray(0, m.length);
      for (const [, hash] of hashesFor(m.id, m.algos)) hash.update(bytes);
      parentPort.postMessage({ op: 'ack', slab: m.slab });
      break;
    }
    case 'final': {
      const digests = {};
      for (const [a, hash] of hashesFor(m.id, m.algos)) digests[a] = hash.digest('hex');
      hashes.delete(m.id);
      parentPort.postMessage({ op: 'closed', id: m.id, digests });
      break;
    }
    case 'drop':
      hashes.delete(m.id);
      parentPort.postMessage({ op: 'closed', id: m.id });
      break;
  }
});
`;

interface SlabRecord extends HashSlab {
  buffer: SharedArrayBuffer;
  owner: number;
  /** Workers that still have to acknowledge the slab's current update. */
  pendingAcks: number;
  /** Acquired and being filled, not submitted yet. */
  filling: boolean;
}

interface HashWorker {
  thread: Worker;
  /** Streams whose hash state lives in this worker. */
  streams: number;
}

interface StreamState {
  handlers: HashStreamHandlers;
  /** One worker computing both digests, or two (md5, sha512) in parallel. */
  workers: { worker: HashWorker; algos: Algorithm[] }[];
  /** Workers that have not answered final/drop yet. */
  openWorkers: number;
  digests: Partial<HashDigests>;
  closing: boolean;
  finish?: {
    resolve: (digests: HashDigests) => void;
    reject: (error: Error) => void;
  };
}

type WorkerReply =
  | { op: 'ack'; slab: number }
  | { op: 'closed'; id: number; digests?: Partial<HashDigests> };

/**
 * Hash worker threads shared by every upload, started with the first stream.
 * A stream is pinned to the worker with the fewest streams, which computes
 * both digests of its slabs, or (splitAlgorithms, two workers or more) to the
 * two least busy ones, md5 on one and sha512 on the other, so one upload is
 * hashed on two cores. Callers fill slabs and submit them; a slab is released
 * once every worker of its stream acknowledged it. Slabs come from one
 * bounded set shared by all streams (see maxSlabs); every worker is a whole
 * Node isolate (~12 MiB of RSS).
 * Workers are ref'd only while a stream is open so an idle pool never keeps
 * the process alive. A worker that dies fails the open streams and the next
 * stream starts fresh workers; only close() is final.
 */
export class HashWorkerPool {
  readonly slabSize: number;
  private readonly workerCount: number;
  private readonly maxSlabs: number;
  private readonly split: boolean;
  /** Streams waiting for a free slab, first come first served. */
  private readonly slabWaiters: { id: number; ready: (slab: HashSlab) => void }[] = [];
  private workers: HashWorker[] = [];
  private readonly streams = new Map<number, StreamState>();
  private readonly slabs = new Map<number, SlabRecord>();
  private readonly idleSlabs: SlabRecord[] = [];
  private nextStreamId = 1;
  private nextSlabIndex = 0;
  private closedWith: Error | undefined;
  private readonly idleWorkerMs: number;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(options: HashWorkerPoolOptions = {}) {
    const workers = options.workers ?? 1;
    this.workerCount = workers;
    this.slabSize = options.slabSize ?? DEFAULT_SLAB_SIZE;
    this.maxSlabs = options.maxSlabs ?? DEFAULT_MAX_SLABS;
    this.split = (options.splitAlgorithms ?? false) && workers >= 2;
    this.idleWorkerMs = options.idleWorkerMs ?? DEFAULT_IDLE_WORKER_MS;
    if (!Number.isInteger(this.maxSlabs) || this.maxSlabs <= 0) {
      throw new RangeError('maxSlabs must be a positive integer');
    }
    if (!Number.isInteger(workers) || workers <= 0) {
      throw new RangeError('workers must be a positive integer');
    }
    if (!Number.isInteger(this.slabSize) || this.slabSize <= 0) {
      throw new RangeError('slabSize must be a positive integer');
    }
  }

  /** Streams whose hash state still exists in a worker. */
  get activeStreams(): number {
    return this.streams.size;
  }

  /** Worker threads running now (none before the first stream). */
  get runningWorkers(): number {
    return this.workers.length;
  }

  /** Slabs currently allocated (in use or idle for reuse). */
  get allocatedSlabs(): number {
    return this.slabs.size;
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  open(handlers: HashStreamHandlers): number {
    if (this.closedWith) throw this.closedWith;
    clearTimeout(this.idleTimer);
    if (this.workers.length === 0) this.startWorkers();
    const id = this.nextStreamId++;
    const byLoad = [...this.workers].sort((a, b) => a.streams - b.streams);
    const workers = this.split
      ? [
          { worker: byLoad[0], algos: ['sha512' as const] },
          { worker: byLoad[1], algos: ['md5' as const] },
        ]
      : [{ worker: byLoad[0], algos: ['md5' as const, 'sha512' as const] }];
    for (const { worker } of workers) worker.streams++;
    this.streams.set(id, {
      handlers,
      workers,
      openWorkers: workers.length,
      digests: {},
      closing: false,
    });
    if (this.streams.size === 1) this.setRef(true);
    return id;
  }

  /**
   * A free slab for stream `id`; give it back with submit() or discard().
   * When all `maxSlabs` are in use it returns undefined and hands one to
   * `ready` later (unless cancelWait(id) is called first).
   */
  acquireSlab(
    id: number,
    ready: (slab: HashSlab) => void,
  ): HashSlab | undefined {
    if (this.closedWith) throw this.closedWith;
    const slab =
      this.idleSlabs.pop() ??
      (this.slabs.size < this.maxSlabs ? this.allocateSlab() : undefined);
    if (!slab) {
      this.slabWaiters.push({ id, ready });
      // Slabs being filled by slow sources would keep the waiters waiting.
      for (const held of this.slabs.values()) {
        if (held.filling && held.owner !== id) {
          this.streams.get(held.owner)?.handlers.onSlabWanted?.();
        }
      }
      return undefined;
    }
    slab.owner = id;
    slab.filling = true;
    return slab;
  }

  /** Forgets a stream's wait for a slab. */
  cancelWait(id: number): void {
    const at = this.slabWaiters.findIndex((w) => w.id === id);
    if (at !== -1) this.slabWaiters.splice(at, 1);
  }

  /** Hands the first `length` bytes of the slab to the stream's worker(s). */
  submit(id: number, slab: HashSlab, length: number): void {
    const record = this.record(slab);
    record.filling = false;
    const state = this.streams.get(id);
    if (!state) return;
    record.pendingAcks = state.workers.length;
    for (const { worker, algos } of state.workers) {
      worker.thread.postMessage({ op: 'update', id, algos, slab: slab.index, length });
    }
  }

  /** Returns a slab that was acquired but never submitted. */
  discard(slab: HashSlab): void {
    this.recycle(this.record(slab));
  }

  /** Resolves with both digests once every submitted slab has been hashed. */
  finish(id: number): Promise<HashDigests> {
    const state = this.streams.get(id);
    if (!state || state.closing) {
      return Promise.reject(new Error(`hash stream ${id} is not open`));
    }
    state.closing = true;
    return new Promise((resolve, reject) => {
      state.finish = { resolve, reject };
      for (const { worker, algos } of state.workers) {
        worker.thread.postMessage({ op: 'final', id, algos });
      }
    });
  }

  /** Frees the worker's state for `id`; a pending finish() rejects. */
  abort(id: number): void {
    const state = this.streams.get(id);
    if (!state) return;
    state.finish?.reject(new Error(`hash stream ${id} was aborted`));
    state.finish = undefined;
    // After final the worker drops the state by itself.
    if (state.closing) return;
    state.closing = true;
    for (const { worker } of state.workers) {
      worker.thread.postMessage({ op: 'drop', id });
    }
  }

  /** Nest calls this last when the app shuts down, after uploads were drained. */
  onApplicationShutdown(): Promise<void> {
    return this.close();
  }

  /** Terminates the workers for good; open streams fail. */
  async close(): Promise<void> {
    if (this.closedWith) return;
    const error = new Error('hash worker pool closed');
    this.closedWith = error;
    await this.stopWorkers(error);
  }

  private startWorkers(): void {
    this.workers = Array.from({ length: this.workerCount }, (_, n) =>
      this.spawn(n),
    );
    // Slabs outlive workers: the new ones must know them before any update.
    for (const slab of this.slabs.values()) {
      this.postToAll({ op: 'slab', slab: slab.index, buffer: slab.buffer });
    }
  }

  /** Fails every open stream, takes back their slabs and ends the workers. */
  private stopWorkers(error: Error): Promise<unknown> {
    const workers = this.workers;
    const states = [...this.streams.values()];
    this.workers = [];
    this.streams.clear();
    this.slabWaiters.length = 0;
    for (const slab of this.slabs.values()) this.recycle(slab);
    clearTimeout(this.idleTimer);
    for (const state of states) {
      state.finish?.reject(error);
      state.handlers.onFailure(error);
    }
    return Promise.all(workers.map(({ thread }) => thread.terminate()));
  }

  /**
   * Ends the workers once no stream is open. Every slab is idle by then (a
   * worker acknowledges a stream's slabs before its final reply), and stays
   * allocated for the workers the next stream starts.
   */
  private stopIdleWorkers(): void {
    if (this.streams.size > 0 || this.closedWith) return;
    const workers = this.workers;
    this.workers = [];
    for (const { thread } of workers) void thread.terminate();
  }

  private spawn(n: number): HashWorker {
    const thread = new Worker(WORKER_SOURCE, {
      eval: true,
      // The workers only feed shared slabs to a hash: small heaps keep the service's RSS down.
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 },
    });
    thread.unref();
    const worker: HashWorker = { thread, streams: 0 };
    thread.on('message', (reply: WorkerReply) => this.onReply(reply));
    thread.on('error', (error) => this.onWorkerDeath(worker, error));
    thread.on('exit', (code) => {
      this.onWorkerDeath(worker, new Error(`hash worker ${n} exited with code ${code}`));
    });
    return worker;
  }

  private onWorkerDeath(worker: HashWorker, error: Error): void {
    // Only a current worker matters: stopped ones exit on purpose.
    if (!this.workers.includes(worker)) return;
    void this.stopWorkers(error);
  }

  private postToAll(message: object): void {
    for (const worker of this.workers) worker.thread.postMessage(message);
  }

  private onReply(reply: WorkerReply): void {
    if (reply.op === 'ack') {
      const slab = this.slabs.get(reply.slab);
      if (!slab || --slab.pendingAcks > 0) return;
      const owner = this.streams.get(slab.owner);
      this.recycle(slab);
      owner?.handlers.onSlabReleased();
      return;
    }
    const state = this.streams.get(reply.id);
    if (!state) return;
    Object.assign(state.digests, reply.digests);
    if (--state.openWorkers > 0) return;
    this.streams.delete(reply.id);
    for (const { worker } of state.workers) worker.streams--;
    if (this.streams.size === 0) {
      this.setRef(false);
      this.idleTimer = setTimeout(() => this.stopIdleWorkers(), this.idleWorkerMs);
      this.idleTimer.unref();
    }
    const { md5, sha512 } = state.digests;
    if (md5 !== undefined && sha512 !== undefined) {
      state.finish?.resolve({ md5, sha512 });
    }
  }

  private allocateSlab(): SlabRecord {
    const buffer = new SharedArrayBuffer(this.slabSize);
    const index = this.nextSlabIndex++;
    const slab: SlabRecord = {
      index,
      buffer,
      view: new Uint8Array(buffer),
      owner: 0,
      pendingAcks: 0,
      filling: false,
    };
    this.slabs.set(index, slab);
    this.postToAll({ op: 'slab', slab: index, buffer });
    return slab;
  }

  private recycle(slab: SlabRecord): void {
    // Owner 0 = already idle (a failed stream may still hand its slab back).
    if (slab.owner === 0) return;
    slab.owner = 0;
    slab.pendingAcks = 0;
    slab.filling = false;
    const waiter = this.slabWaiters.shift();
    if (waiter && !this.closedWith) {
      slab.owner = waiter.id;
      slab.filling = true;
      waiter.ready(slab);
      return;
    }
    this.idleSlabs.push(slab);
  }

  private record(slab: HashSlab): SlabRecord {
    const record = this.slabs.get(slab.index);
    if (!record) throw new Error(`unknown hash slab ${slab.index}`);
    return record;
  }

  private setRef(ref: boolean): void {
    for (const { thread } of this.workers) {
      if (ref) thread.ref();
      else thread.unref();
    }
  }
}
