import {
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';

/** How often SQLite's planner statistics are refreshed while the registry grows. */
const OPTIMIZE_INTERVAL_MS = 60 * 60 * 1000;

/**
 * Keeps SQLite's planner statistics (sqlite_stat1/stat4) current: the listing
 * queries choose between a filter's index and the sort key's index by them.
 * `PRAGMA optimize` re-analyzes only tables whose size changed a lot (about
 * 0.5 s at 100,000 images here, rarely); a full ANALYZE, not a sampled one
 * (analysis_limit), because only it writes the sqlite_stat4 histograms that
 * range filters (size_min/size_max) need. PostgreSQL and MariaDB keep their
 * statistics themselves.
 */
@Injectable()
export class SqliteStatistics implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Registry');
  private timer: NodeJS.Timeout | null = null;

  constructor(@InjectDataSource() private readonly db: DataSource) {}

  async onModuleInit(): Promise<void> {
    if (this.db.options.type !== 'better-sqlite3') return;
    // 0x10002: analyze every table that needs it, not only those this connection used.
    await this.optimize('PRAGMA optimize=0x10002');
    this.timer = setInterval(
      () => void this.optimize('PRAGMA optimize'),
      OPTIMIZE_INTERVAL_MS,
    );
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async optimize(sql: string): Promise<void> {
    try {
      await this.db.query(sql);
    } catch (err) {
      this.logger.warn(`${sql} failed: ${(err as Error).message}`);
    }
  }
}
