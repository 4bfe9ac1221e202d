import type { DataSource, EntityManager } from 'typeorm';

const queues = new WeakMap<DataSource, Promise<unknown>>();

/**
 * `db.transaction(work)`, but one at a time on SQLite: TypeORM runs every
 * SQLite query on a single connection, so overlapping transactions would fail
 * ("cannot start a transaction within a transaction") or commit each other's
 * statements. `work` must not start another transaction.
 */
export function serialTransaction<T>(
  db: DataSource,
  work: (tx: EntityManager) => Promise<T>,
): Promise<T> {
  if (db.options.type !== 'better-sqlite3') return db.transaction(work);
  const previous = queues.get(db) ?? Promise.resolve();
  const run = previous.then(() => db.transaction(work));
  queues.set(
    db,
    run.catch(() => undefined),
  );
  return run;
}
