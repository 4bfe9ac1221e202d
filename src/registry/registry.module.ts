import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AppConfig } from '../config/app-config.js';
import { buildDataSourceOptions } from './data-source-options.js';
import { ImageRegistry } from './image.registry.js';
import { MemberRegistry } from './member.registry.js';

@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        ...buildDataSourceOptions(config.DATABASE_URL),
        // Schema changes only through migrations, applied at start.
        migrationsRun: true,
        migrationsTransactionMode: 'each',
      }),
    }),
  ],
  providers: [ImageRegistry, MemberRegistry],
  exports: [ImageRegistry, MemberRegistry],
})
export class RegistryModule {}
