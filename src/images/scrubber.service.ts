import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { runsNodeDuties } from '../cluster/process-role.js';
import { formatTimestamp } from '../common/timestamps.js';
import { AppConfig } from '../config/app-config.js';
import { ImageRegistry } from '../registry/image.registry.js';
import { StoreRegistry } from '../stores/store.registry.js';

/**
 * Glance's scrubber for DELAYED_DELETE: the data of pending_delete images is
 * removed SCRUB_TIME seconds after their deletion, then they become deleted.
 * Runs every SCRUBBER_INTERVAL seconds in the service, or once via `npm run scrub`.
 */
@Injectable()
export class ScrubberService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Scrubber');
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;

  constructor(
    private readonly registry: ImageRegistry,
    private readonly stores: StoreRegistry,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    // With WORKERS > 1 the primary scrubs for the node.
    if (!this.config.DELAYED_DELETE || !runsNodeDuties()) return;
    this.timer = setInterval(() => void this.scrubOnce(), this.config.SCRUBBER_INTERVAL * 1000);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Scrubs every due image; returns how many were scrubbed. Concurrent calls share one run. */
  scrubOnce(now = new Date()): Promise<number> {
    this.running ??= this.scrub(now).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async scrub(now: Date): Promise<number> {
    const before = formatTimestamp(new Date(now.getTime() - this.config.SCRUB_TIME * 1000));
    let scrubbed = 0;
    for (;;) {
      const due = await this.registry.pendingDeletes(before);
      if (due.length === 0) return scrubbed;
      for (const image of due) {
        try {
          for (const location of image.locations) {
            await this.stores.forLocation(location).delete(location);
          }
          await this.registry.markScrubbed(image.id);
          scrubbed++;
        } catch (err) {
          this.logger.error(`Could not scrub image ${image.id}: ${(err as Error).message}`);
          return scrubbed;
        }
      }
    }
  }
}
