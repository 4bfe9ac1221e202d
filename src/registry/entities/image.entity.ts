import {
  Column,
  Entity,
  Index,
  OneToMany,
  PrimaryColumn,
  type Relation,
} from 'typeorm';
import { bigintToNumber } from './column-types.js';
import { SoftDeletable } from './soft-deletable.js';
import type { ImagePropertyEntity } from './image-property.entity.js';
import type { ImageLocationEntity } from './image-location.entity.js';
import type { ImageMemberEntity } from './image-member.entity.js';

/** Row of Glance's `images` table (plus the sha512 hash later Glance added). */
@Entity('images')
@Index('ix_images_listing', ['deleted', 'createdAt', 'id'])
@Index('ix_images_is_public', ['isPublic'])
@Index('ix_images_owner', ['owner'])
@Index('ix_images_checksum', ['checksum'])
@Index('ix_images_updated_at', ['updatedAt'])
@Index('ix_images_status', ['status'])
@Index('ix_images_status_upload_node', ['status', 'uploadNode'])
// Listing indexes (migration ListingIndexes): one per sort key and per equality filter,
// each ending in the (created_at, id) tie-breakers, so a page is a seek plus an in-order walk.
@Index('ix_images_list_name', ['deleted', 'name', 'createdAt', 'id'])
@Index('ix_images_list_status', ['deleted', 'status', 'createdAt', 'id'])
@Index('ix_images_list_container_format', ['deleted', 'containerFormat', 'createdAt', 'id'])
@Index('ix_images_list_disk_format', ['deleted', 'diskFormat', 'createdAt', 'id'])
@Index('ix_images_list_size', ['deleted', 'size', 'createdAt', 'id'])
@Index('ix_images_list_id', ['deleted', 'id'])
@Index('ix_images_list_updated_at', ['deleted', 'updatedAt', 'createdAt', 'id'])
@Index('ix_images_list_min_ram', ['deleted', 'minRam', 'createdAt', 'id'])
@Index('ix_images_list_min_disk', ['deleted', 'minDisk', 'createdAt', 'id'])
@Index('ix_images_list_is_public', ['deleted', 'isPublic', 'createdAt', 'id'])
@Index('ix_images_list_protected', ['deleted', 'protected', 'createdAt', 'id'])
@Index('ix_images_list_owner', ['deleted', 'owner', 'createdAt', 'id'])
// changes-since lists deleted images too: its walk cannot start with `deleted`.
@Index('ix_images_created_at_id', ['createdAt', 'id'])
export class ImageEntity extends SoftDeletable {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Column({ type: 'varchar', length: 255, nullable: true })
  name: string | null;

  @Column({ name: 'disk_format', type: 'varchar', length: 20, nullable: true })
  diskFormat: string | null;

  @Column({
    name: 'container_format',
    type: 'varchar',
    length: 20,
    nullable: true,
  })
  containerFormat: string | null;

  @Column({
    type: 'bigint',
    nullable: true,
    transformer: bigintToNumber,
  })
  size: number | null;

  @Column({
    name: 'virtual_size',
    type: 'bigint',
    nullable: true,
    transformer: bigintToNumber,
  })
  virtualSize: number | null;

  @Column({ type: 'varchar', length: 30 })
  status: string;

  @Column({ name: 'is_public', type: 'boolean', default: false })
  isPublic: boolean;

  @Column({ type: 'varchar', length: 32, nullable: true })
  checksum: string | null;

  @Column({ name: 'os_hash_algo', type: 'varchar', length: 64, nullable: true })
  osHashAlgo: string | null;

  @Column({
    name: 'os_hash_value',
    type: 'varchar',
    length: 128,
    nullable: true,
  })
  osHashValue: string | null;

  @Column({ name: 'min_disk', type: 'int', default: 0 })
  minDisk: number;

  @Column({ name: 'min_ram', type: 'int', default: 0 })
  minRam: number;

  @Column({ type: 'varchar', length: 255, nullable: true })
  owner: string | null;

  @Column({ type: 'boolean', default: false })
  protected: boolean;


  /** NODE_ID of the API node running this image's upload (internal, never serialised). */
  @Column({ name: 'upload_node', type: 'varchar', length: 255, nullable: true })
  uploadNode: string | null;

  /** Process on that node running the upload (its pid), so a dead worker's uploads can be told apart. */
  @Column({ name: 'upload_worker', type: 'varchar', length: 64, nullable: true })
  uploadWorker: string | null;

  @OneToMany('ImagePropertyEntity', 'image')
  properties?: Relation<ImagePropertyEntity[]>;

  @OneToMany('ImageLocationEntity', 'image')
  locations?: Relation<ImageLocationEntity[]>;

  @OneToMany('ImageMemberEntity', 'image')
  members?: Relation<ImageMemberEntity[]>;
}
