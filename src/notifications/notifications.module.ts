import { Module } from '@nestjs/common';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { NotificationRelayListener } from './notification-relay.listener.js';
import { NOTIFICATION_STATS } from '../metrics/notification-stats.interface.js';
import { NotifierService } from './notifier.service.js';

@Module({
  imports: [EventEmitterModule.forRoot({ wildcard: true, delimiter: '.' })],
  providers: [
    NotifierService,
    NotificationRelayListener,
    { provide: NOTIFICATION_STATS, useExisting: NotificationRelayListener },
  ],
  exports: [NotifierService, NotificationRelayListener, NOTIFICATION_STATS],
})
export class NotificationsModule {}
