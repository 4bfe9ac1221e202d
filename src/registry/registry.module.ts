import { Logger, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { runsNodeDuties } from '../cluster/process-role.js';
import { AppConfig } from '../config/app-config.js';
import { buildDataSourceOptions } from './data-source-options.js';
import { ImageRegistry } from './image.registry.js';
import { MemberRegistry } from './member.registry.js';
import { runMigrations } from './run-migrations.js';
import { SqliteStatistics } from './sqlite-statistics.js';

@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) =>
        buildDataSourceOptions(config.DATABASE_URL),
      // Schema changes only through migrations, applied at start under a lock.
      dataSourceFactory: async (options) => {
        const ds = new DataSource(options!);
        await ds.initialize();
        // With WORKERS > 1 the primary migrated before it started the workers.
        if (runsNodeDuties()) {
          const applied = await runMigrations(ds);
          if (applied.length)
            new Logger('Registry').log(
              `Applied ${applied.length} migration(s)`,
            );
        }
        return ds;
      },
    }),
  ],
  providers: [ImageRegistry, MemberRegistry, SqliteStatistics],
  exports: [ImageRegistry, MemberRegistry],
})
export class RegistryModule {}
