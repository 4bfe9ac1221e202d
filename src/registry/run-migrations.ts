import type { DataSource, Migration } from 'typeorm';

/** Names the migration lock: one per database (MySQL) or per schema (PostgreSQL). */
const LOCK_PREFIX = 'glance-v1-migrations:';
const MYSQL_LOCK_WAIT_SECONDS = 120;

/**
 * Applies pending migrations while holding a database-wide lock, so API nodes
 * starting together on an empty database do not both create the tables:
 * the second waits, then finds nothing left to do. TypeORM takes no such lock
 * itself. SQLite needs none here: its file serves a single node.
 */
export async function runMigrations(ds: DataSource): Promise<Migration[]> {
  const kind = ds.options.type;
  if (kind !== 'postgres' && kind !== 'mysql' && kind !== 'mariadb') {
    return ds.runMigrations({ transaction: 'each' });
  }
  // The lock belongs to a session: take and release it on one connection.
  const runner = ds.createQueryRunner();
  await runner.connect();
  try {
    if (kind === 'postgres') {
      await runner.query(
        'SELECT pg_advisory_lock(hashtext($1 || current_schema()))',
        [LOCK_PREFIX],
      );
    } else {
      const [row] = (await runner.query(
        'SELECT GET_LOCK(CONCAT(?, DATABASE()), ?) AS locked',
        [LOCK_PREFIX, MYSQL_LOCK_WAIT_SECONDS],
      )) as { locked: number | string | null }[];
      if (Number(row?.locked) !== 1) {
        throw new Error(
          `another node held the migration lock for more than ${MYSQL_LOCK_WAIT_SECONDS} s`,
        );
      }
    }
    try {
      return await ds.runMigrations({ transaction: 'each' });
    } finally {
      await runner.query(
        kind === 'postgres'
          ? 'SELECT pg_advisory_unlock(hashtext($1 || current_schema()))'
          : 'SELECT RELEASE_LOCK(CONCAT(?, DATABASE()))',
        [LOCK_PREFIX],
      );
    }
  } finally {
    await runner.release();
  }
}
