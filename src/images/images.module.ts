import { Module } from '@nestjs/common';
import { CacheModule } from '../cache/cache.module.js';
import { AppConfig } from '../config/app-config.js';
import { NotificationsModule } from '../notifications/notifications.module.js';
import { PolicyModule } from '../policy/policy.module.js';
import { RegistryModule } from '../registry/registry.module.js';
import { StoresModule } from '../stores/stores.module.js';
import { ImageDownloader } from './download/image-downloader.js';
import { ImageMetaPipe } from './image-meta.pipe.js';
import { ImagesController } from './images.controller.js';
import { ImagesService } from './images.service.js';
import { ExternalSourceService } from './external-source.service.js';
import { QuotaService } from './quota.service.js';
import { ScrubberService } from './scrubber.service.js';
import { ImageUploader } from './upload/image-uploader.js';
import { UploadTracker } from './upload/upload-tracker.js';
import { UploadReaperService } from './upload/upload-reaper.service.js';
import { GracefulShutdownService } from './upload/graceful-shutdown.service.js';
import { HashWorkerPool } from './upload/hash-worker-pool.js';

@Module({
  imports: [RegistryModule, StoresModule, PolicyModule, NotificationsModule, CacheModule],
  controllers: [ImagesController],
  providers: [
    ImagesService,
    QuotaService,
    ScrubberService,
    UploadReaperService,
    GracefulShutdownService,
    ExternalSourceService,
    ImageUploader,
    ImageDownloader,
    UploadTracker,
    ImageMetaPipe,
    {
      provide: HashWorkerPool,
      inject: [AppConfig],
      useFactory: (config: AppConfig) =>
        new HashWorkerPool({
          workers: config.HASH_WORKERS,
          maxSlabs: config.HASH_MAX_SLABS,
          splitAlgorithms: config.HASH_WORKERS >= 2,
        }),
    },
  ],
  exports: [ImagesService, UploadTracker, ScrubberService],
})
export class ImagesModule {}
