import { Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { ExternalUrlGuard } from './external-url-guard.js';
import { FileStore } from './file.store.js';
import { HttpStore } from './http.store.js';
import type { ImageStore } from './image-store.interface.js';
import { StoreRegistry } from './store.registry.js';

/** Every store the configuration enables: file and http always, swift and s3 when configured. */
async function buildStores(config: AppConfig, guard: ExternalUrlGuard): Promise<ImageStore[]> {
  const file = new FileStore(config.FILESYSTEM_STORE_DATADIR);
  await file.init();
  const stores: ImageStore[] = [file, new HttpStore({ guard })];
  // Object-store clients are loaded only when configured (the AWS SDK alone is ~25 MiB of RSS).
  if (config.SWIFT_STORE_AUTH_URL) {
    const { SwiftStore } = await import('./swift.store.js');
    stores.push(
      new SwiftStore({
        authUrl: config.SWIFT_STORE_AUTH_URL,
        user: required(config.SWIFT_STORE_USER, 'SWIFT_STORE_USER'),
        key: required(config.SWIFT_STORE_KEY, 'SWIFT_STORE_KEY'),
        container: config.SWIFT_STORE_CONTAINER,
        largeObjectSize: config.SWIFT_STORE_LARGE_OBJECT_SIZE,
        largeObjectChunkSize: config.SWIFT_STORE_LARGE_OBJECT_CHUNK_SIZE,
      }),
    );
  }
  if (config.S3_STORE_ENDPOINT) {
    const { S3Store } = await import('./s3.store.js');
    stores.push(
      new S3Store({
        endpoint: config.S3_STORE_ENDPOINT,
        region: config.S3_STORE_REGION,
        bucket: config.S3_STORE_BUCKET,
        accessKeyId: required(config.S3_STORE_ACCESS_KEY, 'S3_STORE_ACCESS_KEY'),
        secretAccessKey: required(config.S3_STORE_SECRET_KEY, 'S3_STORE_SECRET_KEY'),
        forcePathStyle: config.S3_STORE_FORCE_PATH_STYLE,
        partSize: config.S3_STORE_PART_SIZE,
      }),
    );
  }
  return stores;
}

function required(value: string | undefined, name: string): string {
  if (!value) throw new Error(`${name} must be set when its store is enabled`);
  return value;
}

@Module({
  providers: [
    {
      provide: ExternalUrlGuard,
      inject: [AppConfig],
      useFactory: (config: AppConfig) =>
        new ExternalUrlGuard({ allowlist: config.EXTERNAL_SOURCE_ALLOWLIST }),
    },
    {
      provide: StoreRegistry,
      inject: [AppConfig, ExternalUrlGuard],
      useFactory: async (config: AppConfig, guard: ExternalUrlGuard) =>
        new StoreRegistry(await buildStores(config, guard), config.DEFAULT_STORE),
    },
  ],
  exports: [StoreRegistry, ExternalUrlGuard],
})
export class StoresModule {}
