import { Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { FileStore } from './file.store.js';
import { StoreRegistry } from './store.registry.js';

@Module({
  providers: [
    {
      provide: StoreRegistry,
      inject: [AppConfig],
      useFactory: async (config: AppConfig) => {
        const file = new FileStore(config.FILESYSTEM_STORE_DATADIR);
        await file.init();
        return new StoreRegistry([file], config.DEFAULT_STORE);
      },
    },
  ],
  exports: [StoreRegistry],
})
export class StoresModule {}
