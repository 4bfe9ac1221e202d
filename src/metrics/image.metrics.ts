import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Gauge, Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { ImageEntity } from '../registry/entities/image.entity.js';

/** glance_images{status}: one GROUP BY per scrape, deleted rows included (status deleted/pending_delete). */
@Injectable()
export class ImageMetrics {
  private readonly logger = new Logger('Metrics');
  private readonly gauge: Gauge<'status'>;

  constructor(
    registry: Registry,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {
    this.gauge = new Gauge({
      name: 'glance_images',
      help: 'Images in the registry by status, counted at scrape time.',
      labelNames: ['status'],
      // Every worker counts the same table: the node reports one count, not their sum.
      aggregator: 'first',
      registers: [registry],
      collect: () => this.collect(),
    });
  }

  private async collect(): Promise<void> {
    this.gauge.reset();
    try {
      const rows = await this.dataSource
        .createQueryBuilder()
        .select('i.status', 'status')
        .addSelect('COUNT(*)', 'count')
        .from(ImageEntity, 'i')
        .groupBy('i.status')
        .getRawMany<{ status: string; count: string | number }>();
      for (const row of rows)
        this.gauge.set({ status: row.status }, Number(row.count));
    } catch (err) {
      // A down database must not fail the whole scrape: the gauge is just absent.
      this.logger.warn(
        `Could not count images by status: ${(err as Error).message}`,
      );
    }
  }
}
