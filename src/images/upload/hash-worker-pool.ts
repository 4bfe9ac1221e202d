import { Worker } from 'node:worker_threads';

/** A fixed-size shared buffer that both hash workers read without copying. */
export interface HashSlab {
  readonly index: number;
  readonly view: Uint8Array;
}

export interface HashDigests {
  md5: string;
  sha512: string;
}

export interface HashStreamHandlers {
  /** A slab submitted by this stream has been hashed by both workers. */
  onSlabReleased(): void;
  /** The pool failed (a worker died or the pool was closed); the stream cannot finish. */
  onFailure(error: Error): void;
}

export interface HashWorkerPoolOptions {
  /** Bytes per slab; every update message hashes up to this many bytes. */
  slabSize?: number;
  /** Released slabs kept for reuse; beyond this they are dropped for the GC. */
  maxIdleSlabs?: number;
}

export const DEFAULT_SLAB_SIZE = 1024 * 1024;
const DEFAULT_MAX_IDLE_SLABS = 8;
const ALGORITHMS = ['md5', 'sha512'] as const;
type Algorithm = (typeof ALGORITHMS)[number];

// Plain CommonJS so it runs via `eval: true` from dist/ and under Vitest alike.
// Messages from one port arrive in order, so a stream's updates always precede
// its final/drop, and a slab's registration precedes its first update.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const algorithm = workerData.algorithm;
const slabs = new Map();
const hashes = new Map();
function hashFor(id) {
  let hash = hashes.get(id);
  if (hash === undefined) {
    hash = createHash(algorithm);
    hashes.set(id, hash);
  }
  return hash;
}
parentPort.on('message', (m) => {
  switch (m.op) {
    case 'slab':
      slabs.set(m.slab, new Uint8Array(m.buffer));
      break;
    case 'unslab':
      slabs.delete(m.slab);
      break;
    case 'update':
      hashFor(m.id).update(slabs.get(m.slab).subarray(0, m.length));
      parentPort.postMessage({ op: 'ack', slab: m.slab });
      break;
    case 'final': {
      const hex = hashFor(m.id).digest('hex');
      hashes.delete(m.id);
      parentPort.postMessage({ op: 'closed', id: m.id, hex });
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
  /** Workers that have not yet acknowledged the current contents. */
  pendingAcks: number;
}

interface StreamState {
  handlers: HashStreamHandlers;
  /** Workers that have not yet confirmed that their hash state is gone. */
  openWorkers: number;
  closing: boolean;
  digests: Partial<HashDigests>;
  finish?: {
    resolve: (digests: HashDigests) => void;
    reject: (error: Error) => void;
  };
}

type WorkerReply =
  { op: 'ack'; slab: number } | { op: 'closed'; id: number; hex?: string };

/**
 * Two persistent worker threads, one per algorithm, shared by every upload.
 * Callers fill slabs and submit them; each slab is released once both workers
 * acknowledged it. Workers are ref'd only while a stream is open so an idle
 * pool never keeps the process alive.
 */
export class HashWorkerPool {
  private static instance: HashWorkerPool | undefined;

  readonly slabSize: number;
  private readonly maxIdleSlabs: number;
  private readonly workers: Record<Algorithm, Worker>;
  private readonly streams = new Map<number, StreamState>();
  private readonly slabs = new Map<number, SlabRecord>();
  private readonly idleSlabs: SlabRecord[] = [];
  private nextStreamId = 1;
  private nextSlabIndex = 0;
  private closedWith: Error | undefined;

  /** The process-wide pool, created on first use and recreated after close(). */
  static shared(): HashWorkerPool {
    if (!HashWorkerPool.instance || HashWorkerPool.instance.closed) {
      HashWorkerPool.instance = new HashWorkerPool();
    }
    return HashWorkerPool.instance;
  }

  constructor(options: HashWorkerPoolOptions = {}) {
    this.slabSize = options.slabSize ?? DEFAULT_SLAB_SIZE;
    this.maxIdleSlabs = options.maxIdleSlabs ?? DEFAULT_MAX_IDLE_SLABS;
    if (!Number.isInteger(this.slabSize) || this.slabSize <= 0) {
      throw new RangeError('slabSize must be a positive integer');
    }
    this.workers = {
      md5: this.spawn('md5'),
      sha512: this.spawn('sha512'),
    };
  }

  /** Streams whose hash state still exists in at least one worker. */
  get activeStreams(): number {
    return this.streams.size;
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
    const id = this.nextStreamId++;
    this.streams.set(id, {
      handlers,
      openWorkers: ALGORITHMS.length,
      closing: false,
      digests: {},
    });
    if (this.streams.size === 1) this.setRef(true);
    return id;
  }

  /** A free slab for stream `id`; give it back with submit() or discard(). */
  acquireSlab(id: number): HashSlab {
    if (this.closedWith) throw this.closedWith;
    const slab = this.idleSlabs.pop() ?? this.allocateSlab();
    slab.owner = id;
    return slab;
  }

  /** Hands the first `length` bytes of the slab to both workers. */
  submit(id: number, slab: HashSlab, length: number): void {
    const record = this.record(slab);
    record.pendingAcks = ALGORITHMS.length;
    for (const algorithm of ALGORITHMS) {
      this.workers[algorithm].postMessage({
        op: 'update',
        id,
        slab: slab.index,
        length,
      });
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
      for (const algorithm of ALGORITHMS) {
        this.workers[algorithm].postMessage({ op: 'final', id });
      }
    });
  }

  /** Frees the workers' state for `id`; a pending finish() rejects. */
  abort(id: number): void {
    const state = this.streams.get(id);
    if (!state) return;
    state.finish?.reject(new Error(`hash stream ${id} was aborted`));
    state.finish = undefined;
    // After final the workers drop the state by themselves.
    if (state.closing) return;
    state.closing = true;
    for (const algorithm of ALGORITHMS) {
      this.workers[algorithm].postMessage({ op: 'drop', id });
    }
  }

  /** Terminates both workers; open streams fail. */
  async close(): Promise<void> {
    if (this.closedWith) return;
    this.fail(new Error('hash worker pool closed'));
    await Promise.all(
      ALGORITHMS.map((algorithm) => this.workers[algorithm].terminate()),
    );
  }

  private spawn(algorithm: Algorithm): Worker {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { algorithm },
      // The workers only feed shared slabs to a hash: small heaps keep the service's RSS down.
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 },
    });
    worker.unref();
    worker.on('message', (reply: WorkerReply) =>
      this.onReply(algorithm, reply),
    );
    worker.on('error', (error) => this.fail(error));
    worker.on('exit', (code) => {
      this.fail(new Error(`${algorithm} hash worker exited with code ${code}`));
    });
    return worker;
  }

  private onReply(algorithm: Algorithm, reply: WorkerReply): void {
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
    if (reply.hex !== undefined) state.digests[algorithm] = reply.hex;
    if (--state.openWorkers > 0) return;
    this.streams.delete(reply.id);
    if (this.streams.size === 0) this.setRef(false);
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
    };
    this.slabs.set(index, slab);
    for (const algorithm of ALGORITHMS) {
      this.workers[algorithm].postMessage({ op: 'slab', slab: index, buffer });
    }
    return slab;
  }

  private recycle(slab: SlabRecord): void {
    slab.owner = 0;
    if (this.idleSlabs.length < this.maxIdleSlabs) {
      this.idleSlabs.push(slab);
      return;
    }
    this.slabs.delete(slab.index);
    if (this.closedWith) return;
    for (const algorithm of ALGORITHMS) {
      this.workers[algorithm].postMessage({ op: 'unslab', slab: slab.index });
    }
  }

  private record(slab: HashSlab): SlabRecord {
    const record = this.slabs.get(slab.index);
    if (!record) throw new Error(`unknown hash slab ${slab.index}`);
    return record;
  }

  private setRef(ref: boolean): void {
    for (const algorithm of ALGORITHMS) {
      if (ref) this.workers[algorithm].ref();
      else this.workers[algorithm].unref();
    }
  }

  private fail(error: Error): void {
    if (this.closedWith) return;
    this.closedWith = error;
    const states = [...this.streams.values()];
    this.streams.clear();
    this.setRef(false);
    for (const state of states) {
      state.finish?.reject(error);
      state.handlers.onFailure(error);
    }
    for (const algorithm of ALGORITHMS)
      void this.workers[algorithm].terminate();
  }
}
