import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { DataSource } from 'typeorm';

/** Which database the e2e suite runs on: TEST_DATABASE=sqlite (default), postgres or mysql. */
export type TestDatabaseKind = 'sqlite' | 'postgres' | 'mysql';

export const TEST_DATABASE = (process.env.TEST_DATABASE ?? 'sqlite') as TestDatabaseKind;

const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const MYSQL_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * A fresh, empty database for one test app: a SQLite file in `dir`, a new
 * PostgreSQL schema, or a new MariaDB database; dropped by `drop()`.
 */
export async function createTestDatabase(
  dir: string,
  kind: TestDatabaseKind = TEST_DATABASE,
): Promise<TestDatabase> {
  const name = `glance_test_${randomBytes(6).toString('hex')}`;
  switch (kind) {
    case 'sqlite':
      return { url: `sqlite:${join(dir, 'glance.sqlite')}`, drop: async () => {} };
    case 'postgres': {
      await adminQuery('postgres', POSTGRES_URL, `CREATE SCHEMA ${name}`);
      return {
        url: `${POSTGRES_URL}?schema=${name}`,
        drop: () => adminQuery('postgres', POSTGRES_URL, `DROP SCHEMA ${name} CASCADE`),
      };
    }
    case 'mysql': {
      await adminQuery('mysql', MYSQL_URL, `CREATE DATABASE ${name} CHARACTER SET utf8mb4`);
      const url = new URL(MYSQL_URL);
      url.pathname = `/${name}`;
      return {
        url: url.toString(),
        drop: () => adminQuery('mysql', MYSQL_URL, `DROP DATABASE ${name}`),
      };
    }
    default:
      throw new Error(`TEST_DATABASE must be sqlite, postgres or mysql, not ${String(kind)}`);
  }
}

async function adminQuery(type: 'postgres' | 'mysql', url: string, sql: string): Promise<void> {
  const ds = new DataSource({ type, url } as never);
  await ds.initialize();
  try {
    await ds.query(sql);
  } finally {
    await ds.destroy();
  }
}
