/**
 * What the metrics need from the notification publisher. The notifications
 * module provides it (and exports it) under NOTIFICATION_STATS, e.g. with
 * `{ provide: NOTIFICATION_STATS, useExisting: AmqpPublisher }`; without a
 * provider both gauges read 0.
 */
export interface NotificationStats {
  /** Notifications buffered or awaiting the broker's confirm. */
  readonly queueDepth: number;
  /** Notifications dropped since start because the buffer was full. */
  readonly dropped: number;
}

export const NOTIFICATION_STATS = Symbol('NotificationStats');
