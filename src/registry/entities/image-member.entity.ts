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

/** Row of Glance's `image_members` table: an image shared with a tenant. */
@Entity('image_members')
@Index('ix_image_members_image_id_member', ['imageId', 'member'])
@Index('ix_image_members_member', ['member'])
export class ImageMemberEntity extends SoftDeletable {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ name: 'image_id', type: 'varchar', length: 36 })
  imageId: string;

  @ManyToOne('ImageEntity', 'members', { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'image_id',
    foreignKeyConstraintName: 'fk_image_members_image_id',
  })
  image?: Relation<ImageEntity>;

  @Column({ type: 'varchar', length: 255 })
  member: string;

  @Column({ name: 'can_share', type: 'boolean', default: false })
  canShare: boolean;

  @Column({ type: 'varchar', length: 20, default: 'pending' })
  status: string;
}
