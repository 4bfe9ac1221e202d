import { randomUUID } from 'node:crypto';

export type NotificationPriority = 'info' | 'warn' | 'error';

/** The notification oslo.messaging's Notifier builds (notifier.py `_notify`). */
export interface OsloNotification {
  message_id: string;
  publisher_id: string;
  event_type: string;
  priority: 'INFO' | 'WARN' | 'ERROR';
  payload: unknown;
  timestamp: string;
  // Added by the amqp driver to every message; oslo listeners drop duplicates by it.
  _unique_id: string;
}

/** Message format 2.0 (oslo.messaging `serialize_msg`). */
export interface OsloEnvelope {
  'oslo.version': '2.0';
  'oslo.message': string;
}

export interface OsloNotificationInput {
  publisherId: string;
  eventType: string;
  payload: unknown;
  priority: NotificationPriority;
  now?: Date;
}

/** Throws if the payload cannot be serialised to JSON (cycles, BigInt). */
export function buildOsloEnvelope(input: OsloNotificationInput): OsloEnvelope {
  const message: OsloNotification = {
    message_id: randomUUID(),
    publisher_id: input.publisherId,
    event_type: input.eventType,
    priority: input.priority.toUpperCase() as OsloNotification['priority'],
    payload: input.payload === undefined ? null : input.payload,
    timestamp: formatOsloTimestamp(input.now ?? new Date()),
    _unique_id: randomUUID().replaceAll('-', ''),
  };
  return { 'oslo.version': '2.0', 'oslo.message': JSON.stringify(message) };
}

/**
 * `str(datetime.utcnow())` as oslo sends it: 'YYYY-MM-DD HH:MM:SS.ffffff'.
 * Python drops the fraction when it is exactly zero; we always keep it so the
 * field has one fixed format. JS clocks have millisecond resolution.
 */
export function formatOsloTimestamp(date: Date): string {
  const iso = date.toISOString(); // 2014-01-02T03:04:05.067Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${iso.slice(20, 23)}000`;
}
