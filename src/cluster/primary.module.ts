import { Module } from '@nestjs/common';
import { ConfigModule } from '../config/config.module.js';
import { ScrubberService } from '../images/scrubber.service.js';
import { UploadReaperService } from '../images/upload/upload-reaper.service.js';
import { RegistryModule } from '../registry/registry.module.js';
import { StoresModule } from '../stores/stores.module.js';

/**
 * What the primary of a multi-worker node runs: the registry (migrations at
 * start), the stores (to remove partial data) and the once-per-node services.
 * No HTTP: the workers serve every request.
 */
@Module({
  imports: [ConfigModule, RegistryModule, StoresModule],
  providers: [ScrubberService, UploadReaperService],
})
export class PrimaryModule {}
