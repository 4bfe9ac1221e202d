import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { becomeOneShotTask } from './cluster/process-role.js';
import { CacheMaintenanceService } from './cache/cache-maintenance.service.js';
import { ImageCache } from './cache/image-cache.service.js';

/** `npm run cache:prune|cache:clean|cache:prefetch`: one pass, then exit (Glance's glance-cache-* binaries). */
async function main(): Promise<void> {
  const task = process.argv[2];
  if (!['prune', 'clean', 'prefetch'].includes(task))
    throw new Error('usage: cache-run prune|clean|prefetch');
  becomeOneShotTask();
  const app = await NestFactory.createApplicationContext(AppModule, {
    logger: ['error', 'warn', 'log'],
  });
  try {
    const cache = app.get(ImageCache);
    if (!cache.enabled)
      throw new Error('IMAGE_CACHE_DIR is not set: there is no image cache');
    if (task === 'prune')
      console.log(`Pruned ${await cache.prune()} cache entr(y/ies)`);
    if (task === 'clean')
      console.log(`Cleaned ${await cache.clean()} cache file(s)`);
    if (task === 'prefetch')
      console.log(
        `Prefetched ${await app.get(CacheMaintenanceService).prefetch()} image(s)`,
      );
  } finally {
    await app.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
