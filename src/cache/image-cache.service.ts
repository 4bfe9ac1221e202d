import {
  Injectable,
  Logger,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import { constants } from 'node:fs';
import {
  mkdir,
  open,
  readdir,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppConfig } from '../config/app-config.js';
import type { ImageRecord } from '../registry/image-record.js';
import type { ImageReader } from '../stores/image-store.interface.js';
import { CacheFillStream } from './cache-fill.stream.js';
import { CacheIndex, type CacheEntry } from './cache-index.js';
import { CacheMetrics } from './cache.metrics.js';
import { GrowingFileReader } from './growing-file.reader.js';

/** Cache file names are image ids: only this shape is ever joined to the folder. */
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
/** A fill whose file has not grown for this long, with its process gone, is dead. */
const FILL_STALL_MS = 15_000;
/** A just-created incomplete file without a recorded filler is given this long to record one. */
const CLAIM_GRACE_MS = 5_000;

/** The rest of an image from its store: whole, or from a byte offset. */
export type StoreOpener = (offset?: number) => Promise<Readable>;

/** What the download path sends when the cache takes part. */
export interface CachedData {
  size: number;
  reader: ImageReader | null;
  stream: Readable | null;
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * This node's image cache (Glance's glance/image_cache): `<dir>/<id>` are
 * entries, `incomplete/<id>` fills in progress (created with O_EXCL: the
 * fill lock, shared by every worker process), `invalid/<id>` fills whose md5
 * or size did not match, `queue/<id>` images waiting for the prefetcher, and
 * `cache.db` the shared metadata. A file becomes an entry only by a rename.
 * Disabled (every method a no-op) unless IMAGE_CACHE_DIR is set.
 */
@Injectable()
export class ImageCache implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('ImageCache');
  readonly enabled: boolean;
  readonly dir: string;
  private index: CacheIndex | null = null;
  private writable = true;
  private writableReason = '';

  constructor(
    private readonly config: AppConfig,
    private readonly metrics: CacheMetrics,
  ) {
    this.enabled = !!config.IMAGE_CACHE_DIR;
    this.dir = config.IMAGE_CACHE_DIR ? resolve(config.IMAGE_CACHE_DIR) : '';
  }

  async onModuleInit(): Promise<void> {
    if (!this.enabled) return;
    for (const sub of ['', 'incomplete', 'invalid', 'queue'])
      await mkdir(join(this.dir, sub), { recursive: true });
    this.index = new CacheIndex(this.dir);
    await this.recover();
    this.metrics.reportTotals(() => ({
      ...this.totals(),
      writable: this.writable,
    }));
    await this.checkWritable();
  }

  onModuleDestroy(): void {
    this.index?.close();
    this.index = null;
  }

  private get db(): CacheIndex {
    if (!this.index) throw new Error('image cache is not open');
    return this.index;
  }

  private entryPath(id: string, sub = ''): string {
    if (!SAFE_ID.test(id)) throw new Error(`unsafe cache id ${id}`);
    return join(this.dir, sub, id);
  }

  /**
   * After a crash or restart: incomplete files whose filler is gone are
   * removed, entries whose file is missing or has the wrong size dropped,
   * and entry files renamed into place just before a crash adopted (they
   * were verified before the rename).
   */
  async recover(): Promise<void> {
    const fills = new Map(this.db.fills().map((f) => [f.image_id, f.pid]));
    for (const name of await readdir(join(this.dir, 'incomplete'))) {
      const pid = fills.get(name);
      if (pid !== undefined && pid !== process.pid && isAlive(pid)) continue;
      await rm(join(this.dir, 'incomplete', name), { force: true });
      if (pid !== undefined) this.db.endFill(name, pid);
    }
    const entries = new Map(this.db.list().map((e) => [e.image_id, e]));
    for (const entry of entries.values()) {
      const size = await stat(this.entryPath(entry.image_id)).then(
        (s) => s.size,
        () => -1,
      );
      if (size !== entry.size) {
        this.db.remove(entry.image_id);
        await rm(this.entryPath(entry.image_id), { force: true });
      }
    }
    for (const name of await readdir(this.dir)) {
      if (
        !SAFE_ID.test(name) ||
        name === 'cache.db' ||
        name.startsWith('cache.db')
      )
        continue;
      if (entries.has(name)) continue;
      const info = await stat(join(this.dir, name)).catch(() => null);
      if (info?.isFile()) this.db.put(name, info.size);
    }
  }

  list(): CacheEntry[] {
    return this.enabled ? this.db.list() : [];
  }

  totals(): { entries: number; size: number } {
    return this.enabled ? this.db.totals() : { entries: 0, size: 0 };
  }

  isCached(id: string): boolean {
    return this.enabled && SAFE_ID.test(id) && this.db.get(id) !== null;
  }

  /** Removes the entry (not fills in progress). True when there was one. */
  async evict(id: string): Promise<boolean> {
    if (!this.enabled || !SAFE_ID.test(id)) return false;
    const had = this.db.remove(id);
    await rm(this.entryPath(id), { force: true });
    return had;
  }

  async evictAll(): Promise<number> {
    let count = 0;
    for (const entry of this.list())
      if (await this.evict(entry.image_id)) count++;
    return count;
  }

  /** Entries least recently used first (the pruner's order). */
  leastRecentlyUsed(): CacheEntry[] {
    return this.enabled ? this.db.leastRecentlyUsed() : [];
  }

  // --- queue/ (prefetch) ---

  async queued(): Promise<string[]> {
    if (!this.enabled) return [];
    const names = (await readdir(join(this.dir, 'queue'))).filter((n) =>
      SAFE_ID.test(n),
    );
    const withTime = await Promise.all(
      names.map(async (n) => ({
        n,
        t: await stat(join(this.dir, 'queue', n)).then(
          (s) => s.mtimeMs,
          () => Infinity,
        ),
      })),
    );
    return withTime
      .filter((x) => x.t !== Infinity)
      .sort((a, b) => a.t - b.t || a.n.localeCompare(b.n))
      .map((x) => x.n);
  }

  /** Queues an image for prefetching; false (no change) when it is cached or queued already. */
  async queue(id: string): Promise<boolean> {
    if (!this.enabled || this.isCached(id)) return false;
    try {
      await writeFile(this.entryPath(id, 'queue'), '', { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  }

  async dequeue(id: string): Promise<boolean> {
    if (!this.enabled || !SAFE_ID.test(id)) return false;
    return unlink(this.entryPath(id, 'queue')).then(
      () => true,
      () => false,
    );
  }

  async dequeueAll(): Promise<number> {
    let count = 0;
    for (const id of await this.queued()) if (await this.dequeue(id)) count++;
    return count;
  }

  // --- health ---

  get health(): { writable: boolean; reason: string } {
    return { writable: this.writable, reason: this.writableReason };
  }

  /** Writes and removes a small probe file: false when the folder is full, read-only or gone. */
  async checkWritable(): Promise<boolean> {
    if (!this.enabled) return true;
    const probe = join(this.dir, 'incomplete', `.probe-${process.pid}`);
    try {
      await writeFile(probe, Buffer.alloc(4096));
      this.writable = true;
      this.writableReason = '';
    } catch (err) {
      this.writable = false;
      this.writableReason =
        (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    } finally {
      await rm(probe, { force: true }).catch(() => undefined);
    }
    return this.writable;
  }

  // --- the download path ---

  /**
   * The bytes of `image` through the cache, or null when the cache does not
   * take part (off, empty or unchecked image, larger than the whole cache,
   * cache folder unusable): the caller then reads the store as usual.
   * A hit opens the entry; a miss either fills (tees the store into
   * incomplete/<id>) or, when another request fills already, follows the
   * growing file.
   */
  async open(
    image: ImageRecord,
    fromStore: StoreOpener,
  ): Promise<CachedData | null> {
    const size = image.size ?? 0;
    if (
      !this.enabled ||
      size === 0 ||
      !image.checksum ||
      !SAFE_ID.test(image.id)
    )
      return null;
    for (let attempt = 0; attempt < 3; attempt++) {
      const hit = await this.openEntry(image, fromStore);
      if (hit) return hit;
      if (attempt === 0) this.metrics.misses.inc();
      if (size > this.config.IMAGE_CACHE_MAX_SIZE) return null;
      const fill = await this.claimFill(image.id);
      if (fill === 'unusable') return null;
      if (fill !== 'busy') return this.startFill(image, fill, fromStore);
      const follower = await this.follow(image, fromStore);
      if (follower) return follower;
      // The fill ended between our claim and open: look again.
    }
    return null;
  }

  private async openEntry(
    image: ImageRecord,
    fromStore: StoreOpener,
  ): Promise<CachedData | null> {
    const entry = this.db.get(image.id);
    if (!entry) return null;
    let handle: FileHandle;
    try {
      handle = await open(this.entryPath(image.id), 'r');
    } catch {
      this.db.remove(image.id);
      return null;
    }
    const { size } = await handle.stat();
    if (size !== image.size || entry.size !== image.size) {
      await handle.close();
      this.logger.warn(
        `Cached file of image ${image.id} has ${size} bytes, image has ${image.size}: evicted`,
      );
      await this.evict(image.id);
      return null;
    }
    this.metrics.hits.inc();
    // A complete entry read like a finished fill: the same small buffers, and
    // should the file turn out short after all, the rest from the store.
    const reader = new GrowingFileReader(handle, size, {
      stallMs: 0,
      fillerAlive: () => false,
      fromStore,
      done: (fromCache, fromStoreBytes, complete) => {
        this.metrics.bytesServed.inc(fromCache);
        this.metrics.backendBytes.inc(fromStoreBytes);
        if (complete) this.recordHit(image.id);
      },
    });
    return { size, reader, stream: null };
  }

  private recordHit(id: string): void {
    try {
      this.db.recordHit(id);
    } catch (err) {
      this.logger.warn(
        `Could not record a cache hit of ${id}: ${(err as Error).message}`,
      );
    }
  }

  /** Opens incomplete/<id> exclusively. 'busy' when a live fill holds it. */
  private async claimFill(
    id: string,
  ): Promise<FileHandle | 'busy' | 'unusable'> {
    const path = this.entryPath(id, 'incomplete');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(
          path,
          constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
          0o640,
        );
        this.db.claimFill(id, process.pid);
        return handle;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST') {
          this.writeFailure(id, err as Error);
          return 'unusable';
        }
        if (!(await this.fillIsDead(id, path))) return 'busy';
        this.logger.warn(`Removing the abandoned cache fill of image ${id}`);
        await rm(path, { force: true });
      }
    }
    return 'busy';
  }

  private async fillIsDead(id: string, path: string): Promise<boolean> {
    const owner = this.db.fillOwner(id);
    if (owner !== null) return !isAlive(owner);
    const info = await stat(path).catch(() => null);
    return info !== null && Date.now() - info.mtimeMs > CLAIM_GRACE_MS;
  }

  private async startFill(
    image: ImageRecord,
    handle: FileHandle,
    fromStore: StoreOpener,
  ): Promise<CachedData> {
    const id = image.id;
    const size = image.size ?? 0;
    const incomplete = this.entryPath(id, 'incomplete');
    let ended = false;
    const end = async (unlinkFile: boolean) => {
      if (ended) return;
      ended = true;
      if (unlinkFile)
        await rm(incomplete, { force: true }).catch(() => undefined);
      try {
        this.db.endFill(id, process.pid);
      } catch {
        // The index is shared; a busy database only delays the next claim.
      }
    };
    let source: Readable;
    try {
      source = await fromStore();
    } catch (err) {
      await handle.close().catch(() => undefined);
      await end(true);
      throw err;
    }
    const tee = new CacheFillStream(handle, {
      finish: async (md5, bytes) => {
        if (md5 === image.checksum && bytes === size) {
          await rename(incomplete, this.entryPath(id));
          this.db.put(id, size);
          await end(false);
          await this.makeRoom(id);
        } else {
          this.logger.warn(
            `Cache fill of image ${id} got md5 ${md5}, ${bytes} bytes; expected ${image.checksum}, ${size}: moved to invalid/`,
          );
          await rename(incomplete, this.entryPath(id, 'invalid')).catch(() =>
            rm(incomplete, { force: true }),
          );
          await end(false);
        }
      },
      writeFailed: (err) => {
        this.writeFailure(id, err);
        void end(true);
      },
      abandon: () => void end(true),
    }, size);
    tee.once('close', () => this.metrics.backendBytes.inc(tee.bytesIn));
    pipeline(source, tee).catch(() => undefined);
    return { size, reader: null, stream: tee };
  }

  private async follow(
    image: ImageRecord,
    fromStore: StoreOpener,
  ): Promise<CachedData | null> {
    const id = image.id;
    let handle: FileHandle;
    try {
      handle = await open(this.entryPath(id, 'incomplete'), 'r');
    } catch {
      return null;
    }
    const size = image.size ?? 0;
    const reader = new GrowingFileReader(handle, size, {
      stallMs: FILL_STALL_MS,
      fillerAlive: () => {
        const owner = this.db.fillOwner(id);
        return owner !== null && isAlive(owner);
      },
      fromStore: async (offset) => {
        this.logger.warn(
          `Cache fill of image ${id} was abandoned; the rest of this download comes from the store`,
        );
        return fromStore(offset);
      },
      done: (fromCache, fromStoreBytes) => {
        this.metrics.bytesServed.inc(fromCache);
        this.metrics.backendBytes.inc(fromStoreBytes);
      },
    });
    return { size, reader, stream: null };
  }

  private writeFailure(id: string, err: Error): void {
    this.metrics.writeFailures.inc();
    this.writable = false;
    this.writableReason = (err as NodeJS.ErrnoException).code ?? err.message;
    this.logger.error(
      `Could not write image ${id} to the cache (${err.message}); the download continues from the store`,
    );
  }

  /**
   * After `justWritten` became an entry: removes least recently used other
   * entries until the cache is within IMAGE_CACHE_MAX_SIZE, so a new entry
   * never pushes it over and is never the first to go.
   */
  async makeRoom(justWritten?: string): Promise<number> {
    return this.prune(justWritten);
  }

  /** Least recently used first until the total is at most IMAGE_CACHE_MAX_SIZE. */
  async prune(keep?: string): Promise<number> {
    if (!this.enabled) return 0;
    let { size } = this.db.totals();
    let removed = 0;
    for (const entry of this.db.leastRecentlyUsed()) {
      if (size <= this.config.IMAGE_CACHE_MAX_SIZE) break;
      if (entry.image_id === keep) continue;
      if (await this.evict(entry.image_id)) {
        size -= entry.size;
        removed++;
      }
    }
    if (removed > 0)
      this.logger.log(
        `Pruned ${removed} cache entr${removed === 1 ? 'y' : 'ies'}`,
      );
    return removed;
  }

  /** Removes invalid/ files and incomplete/ files untouched for IMAGE_CACHE_STALL_TIME. */
  async clean(): Promise<number> {
    if (!this.enabled) return 0;
    let removed = 0;
    for (const name of await readdir(join(this.dir, 'invalid'))) {
      await rm(join(this.dir, 'invalid', name), { force: true });
      removed++;
    }
    const limit = Date.now() - this.config.IMAGE_CACHE_STALL_TIME * 1000;
    for (const name of await readdir(join(this.dir, 'incomplete'))) {
      const path = join(this.dir, 'incomplete', name);
      const info = await stat(path).catch(() => null);
      if (info && info.mtimeMs < limit) {
        await rm(path, { force: true });
        removed++;
      }
    }
    if (removed > 0)
      this.logger.log(`Cleaned ${removed} invalid or stalled cache file(s)`);
    return removed;
  }
}
