import {
  Module,
  type MiddlewareConsumer,
  type NestModule,
} from '@nestjs/common';
import { CACHE_MANAGEMENT_ROUTES } from './cache/cache.module.js';
import { ConfigModule } from './config/config.module.js';
import { HealthModule } from './health/health.module.js';
import { ImagesModule } from './images/images.module.js';
import { MembersModule } from './members/members.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { NotificationsModule } from './notifications/notifications.module.js';
import { AuthMiddleware } from './policy/auth.middleware.js';
import { PolicyModule } from './policy/policy.module.js';
import { RegistryModule } from './registry/registry.module.js';
import { StoresModule } from './stores/stores.module.js';
import { VersionsController } from './versions.controller.js';

@Module({
  imports: [
    ConfigModule,
    RegistryModule,
    StoresModule,
    PolicyModule,
    NotificationsModule,
    ImagesModule,
    MembersModule,
    HealthModule,
    MetricsModule,
  ],
  controllers: [VersionsController],
})
export class AppModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    // The image cache's management routes also answer under /v2 (today's glance-cache-manage).
    consumer
      .apply(AuthMiddleware)
      .forRoutes(
        'v1/*path',
        ...CACHE_MANAGEMENT_ROUTES.filter((r) => r.startsWith('v2/')),
      );
  }
}
