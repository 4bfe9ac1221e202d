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

/** Row of Glance's `image_properties` table: free-form key/value metadata. */
@Entity('image_properties')
@Index('ix_image_properties_image_id_name', ['imageId', 'name'], {
  unique: true,
})
@Index('ix_image_properties_name', ['name'])
// property-<key>=<value> filters find their images from here (value: a 191-character prefix on MySQL).
@Index('ix_image_properties_name_value', ['name', 'value', 'imageId'])
export class ImagePropertyEntity extends SoftDeletable {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ name: 'image_id', type: 'varchar', length: 36 })
  imageId: string;

  @ManyToOne('ImageEntity', 'properties', { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'image_id',
    foreignKeyConstraintName: 'fk_image_properties_image_id',
  })
  image?: Relation<ImageEntity>;

  @Column({ type: 'varchar', length: 255 })
  name: string;

  @Column({ type: 'text', nullable: true })
  value: string | null;
}
