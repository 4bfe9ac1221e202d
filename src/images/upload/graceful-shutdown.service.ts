import { Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppConfig } from '../../config/app-config.js';
import { UploadTracker } from './upload-tracker.js';

/**
 * On shutdown (SIGTERM): stop accepting connections, let in-flight uploads
 * finish for up to SHUTDOWN_TIMEOUT seconds, then abort the rest, which
 * leaves their images killed and removes their partial data.
 */
@Injectable()
export class GracefulShutdownService implements BeforeApplicationShutdown {
  private readonly logger = new Logger('Shutdown');

  constructor(
    private readonly tracker: UploadTracker,
    private readonly adapterHost: HttpAdapterHost,
    private readonly config: AppConfig,
  ) {}

  async beforeApplicationShutdown(signal?: string): Promise<void> {
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (server?.listening) server.close();
    const deadline = Date.now() + this.config.SHUTDOWN_TIMEOUT * 1000;
    if (this.tracker.active.length > 0) {
      this.logger.log(`${signal ?? 'shutdown'}: waiting for ${this.tracker.active.length} upload(s)`);
    }
    while (this.tracker.active.length > 0 && Date.now() < deadline) await sleep(100);
    const left = this.tracker.active;
    for (const id of left) this.tracker.abort(id, 'service shutting down');
    // The aborted uploads mark themselves killed before leaving the tracker.
    const killDeadline = Date.now() + 5000;
    while (this.tracker.active.length > 0 && Date.now() < killDeadline) await sleep(50);
    if (left.length) this.logger.warn(`Killed ${left.length} upload(s) still running at shutdown`);
  }
}
