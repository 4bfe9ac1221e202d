import { Injectable } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { redactLocations } from '../common/redact-locations.js';
import {
  ImageNotification,
  type ImageEventType,
  type NotificationPriority,
} from './image-notification.js';

/**
 * Publishes image events on the in-process bus; the configured driver's
 * listener forwards them (log, RabbitMQ) or drops them (noop).
 * Call only after the database write the event describes has committed.
 */
@Injectable()
export class NotifierService {
  constructor(private readonly events: EventEmitter2) {}

  info(eventType: ImageEventType, payload: unknown): void {
    this.emit(eventType, 'info', payload);
  }

  error(eventType: ImageEventType, payload: unknown): void {
    this.emit(eventType, 'error', payload);
  }

  private emit(
    eventType: ImageEventType,
    priority: NotificationPriority,
    payload: unknown,
  ): void {
    this.events.emit(
      eventType,
      new ImageNotification(eventType, priority, redactLocations(payload)),
    );
  }
}
