import { Column } from 'typeorm';
import { TIMESTAMP_COLUMN } from './column-types.js';

/** The bookkeeping columns every Glance table has (GlanceBase in Glance's models). */
export abstract class SoftDeletable {
  @Column({ name: 'created_at', ...TIMESTAMP_COLUMN })
  createdAt: string;

  @Column({ name: 'updated_at', ...TIMESTAMP_COLUMN, nullable: true })
  updatedAt: string | null;

  @Column({ name: 'deleted_at', ...TIMESTAMP_COLUMN, nullable: true })
  deletedAt: string | null;

  @Column({ type: 'boolean', default: false })
  deleted: boolean;
}
