import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { runsNodeDuties } from '../../cluster/process-role.js';
import { formatTimestamp, nowTimestamp } from '../../common/timestamps.js';
import { AppConfig } from '../../config/app-config.js';
import { ImageRegistry } from '../../registry/image.registry.js';
import { RegistryError } from '../../registry/registry.error.js';
import { StoreRegistry } from '../../stores/store.registry.js';

/**
 * Keeps this node's heartbeat and cleans up uploads whose node died: at
 * start, this node's own `saving` images (it cannot have uploads in flight
 * yet); periodically, `saving` images of nodes silent for STALE_UPLOAD_SECONDS.
 * Each becomes `killed` and its partial data is removed from every store.
 */
@Injectable()
export class UploadReaperService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('UploadReaper');
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly registry: ImageRegistry,
    private readonly stores: StoreRegistry,
    private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // With WORKERS > 1 the primary does this once for the node.
    if (!runsNodeDuties()) return;
    await this.registry.heartbeat(this.config.NODE_ID, nowTimestamp());
    await this.reap(await this.registry.orphanedUploads(this.config.NODE_ID, null));
    this.timer = setInterval(() => void this.tick(), this.config.HEARTBEAT_INTERVAL * 1000);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** A worker process of this node died: its uploads cannot be running any more. */
  async reapWorker(worker: string): Promise<void> {
    await this.reap(await this.registry.workerUploads(this.config.NODE_ID, worker));
  }

  /** Every `saving` image of this node (none can be in flight: all its workers stopped). */
  async reapNode(): Promise<void> {
    await this.reap(await this.registry.orphanedUploads(this.config.NODE_ID, null));
  }

  /** One heartbeat plus a sweep for uploads of silent nodes. */
  async tick(now = new Date()): Promise<void> {
    try {
      await this.registry.heartbeat(this.config.NODE_ID);
      const staleBefore = formatTimestamp(
        new Date(now.getTime() - this.config.STALE_UPLOAD_SECONDS * 1000),
      );
      await this.reap(await this.registry.orphanedUploads(this.config.NODE_ID, staleBefore));
    } catch (err) {
      this.logger.error(`Heartbeat failed: ${(err as Error).message}`);
    }
  }

  private async reap(ids: string[]): Promise<void> {
    for (const id of ids) {
      try {
        await this.registry.update(id, { fields: { status: 'killed' }, fromState: 'saving' });
      } catch (err) {
        if (err instanceof RegistryError) continue; // finished or killed meanwhile
        throw err;
      }
      for (const store of this.stores.all()) {
        if (!store.writable || !store.removePartial) continue;
        await store.removePartial(id).catch((err: unknown) =>
          this.logger.error(`Could not remove partial data of ${id} from ${store.name}: ${(err as Error).message}`),
        );
      }
      this.logger.warn(`Killed orphaned upload of image ${id} and removed its partial data`);
    }
  }
}
