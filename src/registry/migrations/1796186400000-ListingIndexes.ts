import { TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/** One index per sort key and per equality filter of GET /v1/images, so no page scans the table. */
const IMAGE_INDEXES: [name: string, columns: string[]][] = [
  ['ix_images_list_name', ['deleted', 'name', 'created_at', 'id']],
  ['ix_images_list_status', ['deleted', 'status', 'created_at', 'id']],
  [
    'ix_images_list_container_format',
    ['deleted', 'container_format', 'created_at', 'id'],
  ],
  [
    'ix_images_list_disk_format',
    ['deleted', 'disk_format', 'created_at', 'id'],
  ],
  ['ix_images_list_size', ['deleted', 'size', 'created_at', 'id']],
  ['ix_images_list_id', ['deleted', 'id']],
  ['ix_images_list_updated_at', ['deleted', 'updated_at', 'created_at', 'id']],
  ['ix_images_list_min_ram', ['deleted', 'min_ram', 'created_at', 'id']],
  ['ix_images_list_min_disk', ['deleted', 'min_disk', 'created_at', 'id']],
  ['ix_images_list_is_public', ['deleted', 'is_public', 'created_at', 'id']],
  ['ix_images_list_protected', ['deleted', 'protected', 'created_at', 'id']],
  ['ix_images_list_owner', ['deleted', 'owner', 'created_at', 'id']],
  ['ix_images_created_at_id', ['created_at', 'id']],
];

const PROPERTY_INDEX = 'ix_image_properties_name_value';

export class ListingIndexes1796186400000 implements MigrationInterface {
  name = 'ListingIndexes1796186400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    for (const [name, columnNames] of IMAGE_INDEXES) {
      await queryRunner.createIndex(
        'images',
        new TableIndex({ name, columnNames }),
      );
    }
    const type = queryRunner.connection.options.type;
    if (type === 'mysql' || type === 'mariadb') {
      // A TEXT column takes part in an index only by a prefix on MySQL/MariaDB.
      await queryRunner.query(
        `CREATE INDEX \`${PROPERTY_INDEX}\` ON \`image_properties\` (\`name\`, \`value\`(191), \`image_id\`)`,
      );
    } else {
      await queryRunner.createIndex(
        'image_properties',
        new TableIndex({
          name: PROPERTY_INDEX,
          columnNames: ['name', 'value', 'image_id'],
        }),
      );
    }
    if (type === 'better-sqlite3') await queryRunner.query('ANALYZE');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('image_properties', PROPERTY_INDEX);
    for (const [name] of [...IMAGE_INDEXES].reverse()) {
      await queryRunner.dropIndex('images', name);
    }
  }
}
