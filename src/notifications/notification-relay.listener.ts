import { Injectable, Logger } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { AppConfig } from '../config/app-config.js';
import { ImageNotification } from './image-notification.js';

/** Forwards image events to the driver chosen by NOTIFICATION_DRIVER (log or noop). */
@Injectable()
export class NotificationRelayListener {
  private readonly logger = new Logger('Notification');

  constructor(private readonly config: AppConfig) {}

  @OnEvent('image.*')
  handle(event: ImageNotification): void {
    if (this.config.NOTIFICATION_DRIVER !== 'log') return;
    const line = JSON.stringify({
      event_type: event.eventType,
      priority: event.priority.toUpperCase(),
      payload: event.payload,
    });
    if (event.priority === 'error') this.logger.error(line);
    else this.logger.log(line);
  }
}
