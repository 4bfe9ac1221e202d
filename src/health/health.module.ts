import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { StoresModule } from '../stores/stores.module.js';
import { HealthController } from './health.controller.js';

/** GET/HEAD /healthcheck. Terminus's own failure log is off: the controller logs one plain line. */
@Module({
  imports: [TerminusModule.forRoot({ logger: false }), StoresModule],
  controllers: [HealthController],
})
export class HealthModule {}
