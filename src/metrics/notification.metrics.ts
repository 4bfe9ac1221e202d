import { Inject, Injectable, Optional } from '@nestjs/common';
import { Gauge, Registry } from 'prom-client';
import {
  NOTIFICATION_STATS,
  type NotificationStats,
} from './notification-stats.interface.js';

/** The notification publisher's buffer, read at scrape time (0 when no publisher provides stats). */
@Injectable()
export class NotificationMetrics {
  constructor(
    registry: Registry,
    @Optional() @Inject(NOTIFICATION_STATS) stats?: NotificationStats,
  ) {
    new Gauge({
      name: 'glance_notification_queue_depth',
      help: 'Notifications buffered or awaiting the broker confirm.',
      registers: [registry],
      collect() {
        this.set(stats?.queueDepth ?? 0);
      },
    });
    new Gauge({
      name: 'glance_notifications_dropped_total',
      help: 'Notifications dropped since start because the buffer was full.',
      registers: [registry],
      collect() {
        this.set(stats?.dropped ?? 0);
      },
    });
  }
}
