import { Table, TableColumn, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/** Which API node runs each upload, and the nodes' heartbeats (stale uploads are reaped). */
export class UploadNodes1764244800000 implements MigrationInterface {
  name = 'UploadNodes1764244800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.addColumn(
      'images',
      new TableColumn({ name: 'upload_node', type: 'varchar', length: '255', isNullable: true }),
    );
    await queryRunner.createIndex(
      'images',
      new TableIndex({ name: 'ix_images_status_upload_node', columnNames: ['status', 'upload_node'] }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'api_nodes',
        columns: [
          { name: 'node_id', type: 'varchar', length: '255', isPrimary: true },
          { name: 'started_at', type: 'varchar', length: '26' },
          { name: 'heartbeat_at', type: 'varchar', length: '26' },
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('api_nodes');
    await queryRunner.dropIndex('images', 'ix_images_status_upload_node');
    await queryRunner.dropColumn('images', 'upload_node');
  }
}
