import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildDataSourceOptions,
  REGISTRY_MIGRATIONS,
} from '../../src/registry/data-source-options.js';
import { runMigrations } from '../../src/registry/run-migrations.js';
import {
  createTestDatabase,
  TEST_DATABASE,
  type TestDatabase,
} from '../support/test-database.js';

const TABLES = [
  'images',
  'image_properties',
  'image_locations',
  'image_members',
  'api_nodes',
];

/** The SQL `synchronize` would run to make the database match the entities: the drift. */
async function schemaDrift(ds: DataSource): Promise<string[]> {
  const sql = await ds.driver.createSchemaBuilder().log();
  return sql.upQueries.map((q) => q.query);
}

/** The URL with the scheme of the server it reaches: TypeORM reads MariaDB's catalog only as `mariadb`. */
async function dialectUrl(url: string): Promise<string> {
  if (!url.startsWith('mysql:')) return url;
  const probe = new DataSource(buildDataSourceOptions(url));
  await probe.initialize();
  try {
    const [{ version }] = await probe.query('SELECT VERSION() AS version');
    return /mariadb/i.test(version) ? url.replace(/^mysql:/, 'mariadb:') : url;
  } finally {
    await probe.destroy();
  }
}

async function existingTables(ds: DataSource): Promise<string[]> {
  const runner = ds.createQueryRunner();
  try {
    const found: string[] = [];
    for (const table of TABLES)
      if (await runner.hasTable(table)) found.push(table);
    return found;
  } finally {
    await runner.release();
  }
}

describe(`migrations (${TEST_DATABASE})`, () => {
  let dir: string;
  let database: TestDatabase;
  let ds: DataSource;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'glance-migrations-'));
    database = await createTestDatabase(dir);
    ds = new DataSource(buildDataSourceOptions(await dialectUrl(database.url)));
    await ds.initialize();
  });

  afterAll(async () => {
    if (ds?.isInitialized) await ds.destroy();
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('build exactly the schema the entities describe (no drift)', async () => {
    expect(await existingTables(ds)).toEqual([]);
    const applied = await ds.runMigrations({ transaction: 'each' });
    expect(applied.map((m) => m.name)).toEqual(
      REGISTRY_MIGRATIONS.map((M) => new M().name),
    );
    expect(await existingTables(ds)).toEqual(TABLES);
    expect(await schemaDrift(ds)).toEqual([]);
    expect(await ds.showMigrations()).toBe(false);
  });

  it('revert down to an empty schema, then apply again without drift', async () => {
    for (let n = REGISTRY_MIGRATIONS.length; n > 0; n--) {
      await ds.undoLastMigration({ transaction: 'each' });
    }
    expect(await existingTables(ds)).toEqual([]);
    expect(await ds.showMigrations()).toBe(true);

    await ds.runMigrations({ transaction: 'each' });
    expect(await existingTables(ds)).toEqual(TABLES);
    expect(await schemaDrift(ds)).toEqual([]);
  });

  it('revert the listing indexes alone: tables stay, the indexes go, then come back without drift', async () => {
    await ds.undoLastMigration({ transaction: 'each' });
    expect(await existingTables(ds)).toEqual(TABLES);
    const images = await ds.createQueryRunner().getTable('images');
    expect(images?.indices.map((i) => i.name)).not.toContain('ix_images_list_name');
    await ds.runMigrations({ transaction: 'each' });
    expect(await schemaDrift(ds)).toEqual([]);
  });

  it('revert down to before UploadNodes: the upload-node column and api_nodes go, images stay', async () => {
    const names = REGISTRY_MIGRATIONS.map((M) => new M().name);
    const after = names.length - names.indexOf('UploadNodes1764244800000');
    for (let n = 0; n < after; n++) await ds.undoLastMigration({ transaction: 'each' });
    expect(await existingTables(ds)).toEqual(TABLES.slice(0, 4));
    const images = await ds.createQueryRunner().getTable('images');
    expect(images?.findColumnByName('upload_node')).toBeUndefined();
    await ds.runMigrations({ transaction: 'each' });
    expect(await schemaDrift(ds)).toEqual([]);
  });

  // SQLite serves one node: only the server databases can see nodes starting together.
  it.runIf(TEST_DATABASE !== 'sqlite')(
    'three nodes starting together on an empty database apply the migrations once',
    async () => {
      const url = await dialectUrl(database.url);
      for (let n = REGISTRY_MIGRATIONS.length; n > 0; n--) {
        await ds.undoLastMigration({ transaction: 'each' });
      }
      expect(await existingTables(ds)).toEqual([]);
      const nodes = [1, 2, 3].map(() => new DataSource(buildDataSourceOptions(url)));
      try {
        await Promise.all(nodes.map((node) => node.initialize()));
        const applied = await Promise.all(nodes.map((node) => runMigrations(node)));
        expect(applied.map((list) => list.length).sort()).toEqual([
          0,
          0,
          REGISTRY_MIGRATIONS.length,
        ]);
      } finally {
        await Promise.all(nodes.map((node) => node.destroy()));
      }
      expect(await existingTables(ds)).toEqual(TABLES);
      expect(await schemaDrift(ds)).toEqual([]);
    },
  );
});
