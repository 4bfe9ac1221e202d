import { Module } from '@nestjs/common';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { NotificationRelayListener } from './notification-relay.listener.js';
import { NotifierService } from './notifier.service.js';

@Module({
  imports: [EventEmitterModule.forRoot({ wildcard: true, delimiter: '.' })],
  providers: [NotifierService, NotificationRelayListener],
  exports: [NotifierService, NotificationRelayListener],
})
export class NotificationsModule {}
