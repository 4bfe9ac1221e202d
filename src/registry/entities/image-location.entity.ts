import {
  Column,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
  type Relation,
} from 'typeorm';
import { SoftDeletable } from './soft-deletable.js';
import type { ImageEntity } from './image.entity.js';

/** Row of Glance's `image_locations` table. The URL may hold credentials: never serialise it. */
@Entity('image_locations')
@Index('ix_image_locations_image_id', ['imageId'])
export class ImageLocationEntity extends SoftDeletable {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ name: 'image_id', type: 'varchar', length: 36 })
  imageId: string;

  @ManyToOne('ImageEntity', 'locations', { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'image_id',
    foreignKeyConstraintName: 'fk_image_locations_image_id',
  })
  image?: Relation<ImageEntity>;

  @Column({ type: 'text' })
  value: string;

  /** JSON text of store-specific details (Glance's meta_data). */
  @Column({ name: 'meta_data', type: 'text', nullable: true })
  metaData: string | null;
}
