import {
  TableColumn,
  type MigrationInterface,
  type QueryRunner,
} from 'typeorm';

/** Which worker process of its node runs each upload (WORKERS > 1: a dead worker's uploads are reaped alone). */
export class UploadWorkers1764252000000 implements MigrationInterface {
  name = 'UploadWorkers1764252000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.addColumn(
      'images',
      new TableColumn({
        name: 'upload_worker',
        type: 'varchar',
        length: '64',
        isNullable: true,
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropColumn('images', 'upload_worker');
  }
}
