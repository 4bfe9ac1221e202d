import { Global, Module } from '@nestjs/common';
import {
  AggregatorRegistry,
  collectDefaultMetrics,
  Registry,
} from 'prom-client';
import { processRole } from '../cluster/process-role.js';
import { NotificationsModule } from '../notifications/notifications.module.js';
import { HttpMetrics } from './http.metrics.js';
import { ImageMetrics } from './image.metrics.js';
import { MetricsController } from './metrics.controller.js';
import { NotificationMetrics } from './notification.metrics.js';
import { TransferMetrics } from './transfer.metrics.js';

/** One registry per app (tests run several apps in one process), with the process metrics. */
function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Several workers: the primary's AggregatorRegistry collects this registry from each.
  // (constructing one is what makes prom-client answer the primary's requests).
  if (processRole() === 'worker') {
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([registry]);
  }
  return registry;
}

/**
 * Prometheus metrics at GET /metrics. Global so that the uploader and
 * downloader can report bytes through TransferMetrics; configureApp
 * installs HttpMetrics.middleware. NotificationsModule is imported for its
 * optional NOTIFICATION_STATS export.
 */
@Global()
@Module({
  imports: [NotificationsModule],
  controllers: [MetricsController],
  providers: [
    { provide: Registry, useFactory: createMetricsRegistry },
    HttpMetrics,
    TransferMetrics,
    ImageMetrics,
    NotificationMetrics,
  ],
  exports: [HttpMetrics, TransferMetrics, Registry],
})
export class MetricsModule {}
