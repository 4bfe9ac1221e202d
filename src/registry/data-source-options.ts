import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { DataSourceOptions } from 'typeorm';
import { ImageEntity } from './entities/image.entity.js';
import { ImageLocationEntity } from './entities/image-location.entity.js';
import { ImageMemberEntity } from './entities/image-member.entity.js';
import { ImagePropertyEntity } from './entities/image-property.entity.js';
import { ApiNodeEntity } from './entities/api-node.entity.js';
import { InitialSchema1764237600000 } from './migrations/1764237600000-InitialSchema.js';
import { UploadNodes1764244800000 } from './migrations/1764244800000-UploadNodes.js';
import { UploadWorkers1764252000000 } from './migrations/1764252000000-UploadWorkers.js';
import { ListingIndexes1796186400000 } from './migrations/1796186400000-ListingIndexes.js';

export const REGISTRY_ENTITIES = [
  ImageEntity,
  ImagePropertyEntity,
  ImageLocationEntity,
  ImageMemberEntity,
  ApiNodeEntity,
];

/** Listed explicitly: globs do not work with ESM and hide what runs. */
export const REGISTRY_MIGRATIONS = [
  InitialSchema1764237600000,
  UploadNodes1764244800000,
  UploadWorkers1764252000000,
  ListingIndexes1796186400000,
];

/**
 * The one place that turns DATABASE_URL into TypeORM options; used by Nest
 * (RegistryModule) and by the TypeORM CLI (ormconfig.ts).
 */
export function buildDataSourceOptions(databaseUrl: string): DataSourceOptions {
  const common = {
    entities: REGISTRY_ENTITIES,
    migrations: REGISTRY_MIGRATIONS,
    migrationsRun: false,
    synchronize: false,
    logging: false,
  } as const;

  if (databaseUrl.startsWith('sqlite:')) {
    const file = resolve(databaseUrl.slice('sqlite:'.length));
    mkdirSync(dirname(file), { recursive: true });
    return {
      ...common,
      type: 'better-sqlite3',
      database: file,
      // WAL lets readers run while an upload's status update commits.
      prepareDatabase: (db: { pragma(sql: string): unknown; prepare(sql: string): unknown }) => {
        // Several worker processes share the file: a write transaction takes the
        // write lock when it begins (waiting up to busy_timeout), never halfway,
        // where SQLite would answer SQLITE_BUSY at once instead of waiting.
        const prepare = db.prepare.bind(db);
        db.prepare = (sql: string) =>
          prepare(sql === 'BEGIN TRANSACTION' ? 'BEGIN IMMEDIATE TRANSACTION' : sql);
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        db.pragma('busy_timeout = 5000');
        db.pragma('foreign_keys = ON');
      },
    };
  }

  const url = new URL(databaseUrl);
  const base = {
    host: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    username: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.replace(/^\//, '')),
  };
  if (url.protocol === 'postgres:' || url.protocol === 'postgresql:') {
    const schema = url.searchParams.get('schema') ?? undefined;
    // Raw SQL fragments name tables without a schema: search_path must agree.
    const options = schema ? `-c search_path=${schema}` : undefined;
    return { ...common, ...base, type: 'postgres', schema, extra: { max: 20, options } };
  }
  if (url.protocol === 'mysql:' || url.protocol === 'mariadb:') {
    return {
      ...common,
      ...base,
      // TypeORM reads MariaDB's catalog differently (column defaults): say which server it is.
      type: url.protocol === 'mariadb:' ? 'mariadb' : 'mysql',
      charset: 'utf8mb4',
      extra: { connectionLimit: 20 },
    };
  }
  throw new Error(`DATABASE_URL: unsupported scheme ${url.protocol}`);
}
