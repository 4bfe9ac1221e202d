import {
  Table,
  TableForeignKey,
  TableIndex,
  type MigrationInterface,
  type QueryRunner,
  type TableColumnOptions,
} from 'typeorm';

const timestamps: TableColumnOptions[] = [
  { name: 'created_at', type: 'varchar', length: '26' },
  { name: 'updated_at', type: 'varchar', length: '26', isNullable: true },
  { name: 'deleted_at', type: 'varchar', length: '26', isNullable: true },
  { name: 'deleted', type: 'boolean', default: false },
];

const childKey = (table: string) =>
  new TableForeignKey({
    name: `fk_${table}_image_id`,
    columnNames: ['image_id'],
    referencedTableName: 'images',
    referencedColumnNames: ['id'],
    onDelete: 'CASCADE',
    // Explicit: MySQL's default (RESTRICT) differs from the entities' NO ACTION.
    onUpdate: 'NO ACTION',
  });

const serialId: TableColumnOptions = {
  name: 'id',
  type: 'integer',
  isPrimary: true,
  isGenerated: true,
  generationStrategy: 'increment',
};

/**
 * SQLite keeps a default's text: FALSE is written 0 there, as TypeORM writes
 * the entities' `default: false`, so the schema diff finds no drift.
 */
function tableCreator(queryRunner: QueryRunner): (table: Table) => Promise<void> {
  const sqlite = queryRunner.connection.driver.options.type === 'better-sqlite3';
  return (table) => {
    if (sqlite) for (const column of table.columns) if (column.default === false) column.default = 0;
    return queryRunner.createTable(table);
  };
}

/** Glance's images, image_properties, image_locations and image_members tables. */
export class InitialSchema1764237600000 implements MigrationInterface {
  name = 'InitialSchema1764237600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const createTable = tableCreator(queryRunner);
    await createTable(
      new Table({
        name: 'images',
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'name', type: 'varchar', length: '255', isNullable: true },
          { name: 'disk_format', type: 'varchar', length: '20', isNullable: true },
          { name: 'container_format', type: 'varchar', length: '20', isNullable: true },
          { name: 'size', type: 'bigint', isNullable: true },
          { name: 'virtual_size', type: 'bigint', isNullable: true },
          { name: 'status', type: 'varchar', length: '30' },
          { name: 'is_public', type: 'boolean', default: false },
          { name: 'checksum', type: 'varchar', length: '32', isNullable: true },
          { name: 'os_hash_algo', type: 'varchar', length: '64', isNullable: true },
          { name: 'os_hash_value', type: 'varchar', length: '128', isNullable: true },
          { name: 'min_disk', type: 'integer', default: 0 },
          { name: 'min_ram', type: 'integer', default: 0 },
          { name: 'owner', type: 'varchar', length: '255', isNullable: true },
          { name: 'protected', type: 'boolean', default: false },
          ...timestamps,
        ],
        indices: [
          new TableIndex({ name: 'ix_images_listing', columnNames: ['deleted', 'created_at', 'id'] }),
          new TableIndex({ name: 'ix_images_is_public', columnNames: ['is_public'] }),
          new TableIndex({ name: 'ix_images_owner', columnNames: ['owner'] }),
          new TableIndex({ name: 'ix_images_checksum', columnNames: ['checksum'] }),
          new TableIndex({ name: 'ix_images_updated_at', columnNames: ['updated_at'] }),
          new TableIndex({ name: 'ix_images_status', columnNames: ['status'] }),
        ],
      }),
    );
    await createTable(
      new Table({
        name: 'image_properties',
        columns: [
          serialId,
          { name: 'image_id', type: 'varchar', length: '36' },
          { name: 'name', type: 'varchar', length: '255' },
          { name: 'value', type: 'text', isNullable: true },
          ...timestamps,
        ],
        indices: [
          new TableIndex({
            name: 'ix_image_properties_image_id_name',
            columnNames: ['image_id', 'name'],
            isUnique: true,
          }),
          new TableIndex({ name: 'ix_image_properties_name', columnNames: ['name'] }),
        ],
        foreignKeys: [childKey('image_properties')],
      }),
    );
    await createTable(
      new Table({
        name: 'image_locations',
        columns: [
          serialId,
          { name: 'image_id', type: 'varchar', length: '36' },
          { name: 'value', type: 'text' },
          { name: 'meta_data', type: 'text', isNullable: true },
          ...timestamps,
        ],
        indices: [
          new TableIndex({ name: 'ix_image_locations_image_id', columnNames: ['image_id'] }),
        ],
        foreignKeys: [childKey('image_locations')],
      }),
    );
    await createTable(
      new Table({
        name: 'image_members',
        columns: [
          serialId,
          { name: 'image_id', type: 'varchar', length: '36' },
          { name: 'member', type: 'varchar', length: '255' },
          { name: 'can_share', type: 'boolean', default: false },
          { name: 'status', type: 'varchar', length: '20', default: "'pending'" },
          ...timestamps,
        ],
        indices: [
          new TableIndex({
            name: 'ix_image_members_image_id_member',
            columnNames: ['image_id', 'member'],
          }),
          new TableIndex({ name: 'ix_image_members_member', columnNames: ['member'] }),
        ],
        foreignKeys: [childKey('image_members')],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('image_members');
    await queryRunner.dropTable('image_locations');
    await queryRunner.dropTable('image_properties');
    await queryRunner.dropTable('images');
  }
}
