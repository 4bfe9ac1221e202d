import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { CacheModule } from '../cache/cache.module.js';
import { StoresModule } from '../stores/stores.module.js';
import { HealthController } from './health.controller.js';

/** GET/HEAD /healthcheck. Terminus's own failure log is off: the controller logs one plain line. */
@Module({
  imports: [
    TerminusModule.forRoot({ logger: false }),
    StoresModule,
    CacheModule,
  ],
  controllers: [HealthController],
})
export class HealthModule {}
