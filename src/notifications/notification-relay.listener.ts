import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { hostname } from 'node:os';
import { AppConfig } from '../config/app-config.js';
import { AmqpPublisher } from './amqp-publisher.js';
import type { NotificationStats } from '../metrics/notification-stats.interface.js';
import { ImageNotification } from './image-notification.js';

/**
 * Forwards image events to the driver chosen by NOTIFICATION_DRIVER:
 * `log` writes one line per event, `messaging` publishes to RabbitMQ in the
 * oslo.messaging envelope (never blocking a request), `noop` drops them.
 */
@Injectable()
export class NotificationRelayListener implements NotificationStats, OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Notification');
  private publisher: AmqpPublisher | null = null;

  constructor(private readonly config: AppConfig) {}

  onModuleInit(): void {
    if (this.config.NOTIFICATION_DRIVER !== 'messaging') return;
    this.publisher = new AmqpPublisher({
      transportUrl: this.config.TRANSPORT_URL,
      exchange: this.config.NOTIFICATION_EXCHANGE,
      topic: this.config.NOTIFICATION_TOPIC,
      publisherId: `image.${hostname()}`,
      maxBuffered: this.config.NOTIFICATION_BUFFER_SIZE,
      logger: {
        log: (m) => this.logger.log(m),
        warn: (m) => this.logger.warn(m),
        error: (m) => this.logger.error(m),
      },
    });
    this.publisher.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.publisher?.close();
  }

  /** Events waiting for the broker (NotificationStats, read by the metrics). */
  get queueDepth(): number {
    return this.publisher?.queueDepth ?? 0;
  }

  /** Events dropped because the buffer was full. */
  get dropped(): number {
    return this.publisher?.dropped ?? 0;
  }

  @OnEvent('image.*')
  handle(event: ImageNotification): void {
    switch (this.config.NOTIFICATION_DRIVER) {
      case 'messaging':
        this.publisher?.publish(event.eventType, event.payload, event.priority);
        return;
      case 'log': {
        const line = JSON.stringify({
          event_type: event.eventType,
          priority: event.priority.toUpperCase(),
          payload: event.payload,
        });
        if (event.priority === 'error') this.logger.error(line);
        else this.logger.log(line);
        return;
      }
      default:
        return;
    }
  }
}
