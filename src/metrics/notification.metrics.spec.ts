import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { NotificationMetrics } from './notification.metrics.js';
import type { NotificationStats } from './notification-stats.interface.js';

async function values(registry: Registry): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const metric of await registry.getMetricsAsJSON()) {
    out[metric.name] = metric.values[0]?.value ?? NaN;
  }
  return out;
}

describe('NotificationMetrics', () => {
  it('reads the publisher stats at each scrape', async () => {
    const stats = { queueDepth: 3, dropped: 7 };
    const registry = new Registry();
    new NotificationMetrics(registry, stats satisfies NotificationStats);
    expect(await values(registry)).toEqual({
      glance_notification_queue_depth: 3,
      glance_notifications_dropped_total: 7,
    });
    stats.queueDepth = 0;
    stats.dropped = 9;
    expect(await values(registry)).toEqual({
      glance_notification_queue_depth: 0,
      glance_notifications_dropped_total: 9,
    });
  });

  it('reports 0 when no publisher provides stats', async () => {
    const registry = new Registry();
    new NotificationMetrics(registry);
    expect(await values(registry)).toEqual({
      glance_notification_queue_depth: 0,
      glance_notifications_dropped_total: 0,
    });
  });
});
