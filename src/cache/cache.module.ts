import {
  Module,
  type MiddlewareConsumer,
  type NestModule,
} from '@nestjs/common';
import { PolicyModule } from '../policy/policy.module.js';
import { RegistryModule } from '../registry/registry.module.js';
import { StoresModule } from '../stores/stores.module.js';
import { CacheMaintenanceService } from './cache-maintenance.service.js';
import { CacheOffMiddleware } from './cache-off.middleware.js';
import { CacheMetrics } from './cache.metrics.js';
import { CachedImagesController } from './cached-images.controller.js';
import { ImageCache } from './image-cache.service.js';

/** The cache management routes (AppModule also binds AuthMiddleware to the /v2 ones). */
export const CACHE_MANAGEMENT_ROUTES = [
  'v1/cached_images',
  'v1/cached_images/*path',
  'v1/queued_images',
  'v1/queued_images/*path',
  'v2/cached_images',
  'v2/cached_images/*path',
  'v2/queued_images',
  'v2/queued_images/*path',
];

/**
 * This node's image cache: ImageCache (the download path's look up, open
 * for read, open for fill, evict, list), the management API, and the
 * prefetcher/pruner/cleaner. Everything is inert unless IMAGE_CACHE_DIR is set.
 */
@Module({
  imports: [RegistryModule, StoresModule, PolicyModule],
  controllers: [CachedImagesController],
  providers: [ImageCache, CacheMetrics, CacheMaintenanceService],
  exports: [ImageCache, CacheMaintenanceService],
})
export class CacheModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    // AuthMiddleware for these routes is bound by AppModule (one instance for the app).
    consumer.apply(CacheOffMiddleware).forRoutes(...CACHE_MANAGEMENT_ROUTES);
  }
}
