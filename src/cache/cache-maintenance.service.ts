import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { runsNodeAppDuties } from '../cluster/process-role.js';
import { AppConfig } from '../config/app-config.js';
import { ImageRegistry } from '../registry/image.registry.js';
import { StoreRegistry } from '../stores/store.registry.js';
import { ImageCache } from './image-cache.service.js';
import { storeOpener } from './store-opener.js';

/** A sink for prefetches: the bytes only need to reach the cache file. */
function discard(): Writable {
  return new Writable({ write: (_chunk, _enc, done) => done() });
}

/**
 * Glance's prefetcher, pruner and cleaner, run inside the service every
 * IMAGE_CACHE_*_INTERVAL seconds (0 = off) and once by `npm run cache:*`.
 */
@Injectable()
export class CacheMaintenanceService
  implements OnApplicationBootstrap, OnApplicationShutdown
{
  private readonly logger = new Logger('ImageCache');
  private readonly timers: NodeJS.Timeout[] = [];
  private prefetching = false;

  constructor(
    private readonly config: AppConfig,
    private readonly cache: ImageCache,
    private readonly registry: ImageRegistry,
    private readonly stores: StoreRegistry,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.cache.enabled) return;
    const every = (seconds: number, run: () => Promise<unknown>) => {
      if (seconds <= 0) return;
      const timer = setInterval(() => {
        run().catch((err: unknown) =>
          this.logger.error(
            `Cache maintenance failed: ${(err as Error).message}`,
          ),
        );
      }, seconds * 1000);
      timer.unref();
      this.timers.push(timer);
    };
    // Every process answers /healthcheck from its own view of the folder.
    every(30, () => this.cache.checkWritable());
    // Once per node: in one process, and not in `npm run cache:*`.
    if (!runsNodeAppDuties()) return;
    every(this.config.IMAGE_CACHE_PRUNE_INTERVAL, () => this.cache.prune());
    every(this.config.IMAGE_CACHE_CLEAN_INTERVAL, () => this.cache.clean());
    every(this.config.IMAGE_CACHE_PREFETCH_INTERVAL, () => this.prefetch());
  }

  onApplicationShutdown(): void {
    for (const timer of this.timers) clearInterval(timer);
  }

  /**
   * Reads queued active images into the cache, IMAGE_CACHE_PREFETCH_CONCURRENCY
   * at a time. Inactive or deleted images leave the queue; failures stay
   * queued for the next pass. Returns the number cached.
   */
  async prefetch(): Promise<number> {
    if (!this.cache.enabled || this.prefetching) return 0;
    this.prefetching = true;
    try {
      const queue = await this.cache.queued();
      let cached = 0;
      const worker = async () => {
        for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
          if (await this.prefetchOne(id)) cached++;
        }
      };
      await Promise.all(
        Array.from(
          { length: this.config.IMAGE_CACHE_PREFETCH_CONCURRENCY },
          worker,
        ),
      );
      if (cached > 0)
        this.logger.log(`Prefetched ${cached} image(s) into the cache`);
      return cached;
    } finally {
      this.prefetching = false;
    }
  }

  private async prefetchOne(id: string): Promise<boolean> {
    try {
      const image = await this.registry.get(id);
      if (!image || image.status !== 'active' || !image.location) {
        this.logger.log(
          `Image ${id} is not active: removed from the cache queue`,
        );
        await this.cache.dequeue(id);
        return false;
      }
      if (this.cache.isCached(id)) {
        await this.cache.dequeue(id);
        return false;
      }
      const data = await this.cache.open(
        image,
        storeOpener(this.stores, image),
      );
      if (!data) throw new Error('the cache could not take it');
      if (data.stream) await pipeline(data.stream, discard());
      else if (data.reader) await data.reader.pipeTo(discard(), data.size);
      if (!this.cache.isCached(id))
        throw new Error('the fill did not complete');
      await this.cache.dequeue(id);
      return true;
    } catch (err) {
      this.logger.error(
        `Failed to prefetch image ${id}: ${(err as Error).message}; it stays queued`,
      );
      return false;
    }
  }
}
