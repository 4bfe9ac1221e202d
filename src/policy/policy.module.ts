import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { ClusterThrottlerStorage } from '../cluster/cluster-throttler.storage.js';
import { processRole } from '../cluster/process-role.js';
import { AppConfig } from '../config/app-config.js';
import { PolicyGuard } from './policy.guard.js';
import { PolicyService } from './policy.service.js';
import { PropertyProtectionService } from './property-protection.service.js';
import { RateLimitGuard } from './rate-limit.guard.js';

@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        throttlers: [{ ttl: 60_000, limit: config.RATE_LIMIT_PER_MINUTE }],
        setHeaders: false,
        // Several workers: one set of counters per node, held by the primary.
        ...(processRole() === 'worker'
          ? { storage: new ClusterThrottlerStorage() }
          : {}),
      }),
    }),
  ],
  providers: [
    PolicyService,
    PropertyProtectionService,
    { provide: APP_GUARD, useClass: RateLimitGuard },
    { provide: APP_GUARD, useClass: PolicyGuard },
  ],
  exports: [PolicyService, PropertyProtectionService],
})
export class PolicyModule {}
