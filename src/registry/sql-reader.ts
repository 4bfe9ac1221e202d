import type { DataSource } from 'typeorm';

interface Statement {
  all(...params: unknown[]): unknown[];
  raw(toggle: boolean): Statement;
}
interface SqliteConnection {
  prepare(sql: string): Statement;
}

/** Prepared statements kept per SQL text (the hot queries have few shapes). */
const MAX_CACHED_STATEMENTS = 256;

/**
 * Read queries on the hot paths (list, show, HEAD) as plain SQL with `?`
 * placeholders: on SQLite through cached better-sqlite3 statements, elsewhere
 * through the driver (placeholders rewritten to $n for PostgreSQL). TypeORM's
 * query builder and entity hydration cost more than the queries themselves here.
 */
export class SqlReader {
  private readonly statements = new Map<string, Statement>();
  private readonly rawStatements = new Map<string, Statement>();
  readonly kind: 'sqlite' | 'postgres' | 'mysql';

  constructor(private readonly db: DataSource) {
    const type = db.options.type;
    this.kind =
      type === 'better-sqlite3'
        ? 'sqlite'
        : type === 'postgres'
          ? 'postgres'
          : 'mysql';
  }

  /**
   * SQL expression aggregating `name`/`value` rows into one JSON object
   * (NULL or '{}' when there are none), in this database's dialect.
   */
  jsonObjectAgg(name: string, value: string): string {
    switch (this.kind) {
      case 'sqlite':
        return `json_group_object(${name}, ${value})`;
      case 'postgres':
        return `json_object_agg(${name}, ${value})`;
      default:
        return `JSON_OBJECTAGG(${name}, ${value})`;
    }
  }

  async all<T>(sql: string, params: readonly unknown[]): Promise<T[]> {
    if (this.kind === 'sqlite') {
      return this.statement(sql).all(...params.map(sqliteValue)) as T[];
    }
    if (this.kind === 'postgres') {
      let n = 0;
      return this.db.query(
        sql.replace(/\?/g, () => `$${++n}`),
        [...params],
      ) as Promise<T[]>;
    }
    return this.db.query(sql, [...params]) as Promise<T[]>;
  }

  /**
   * Rows as arrays in SELECT order: on SQLite this skips building an object
   * per row, which costs more than the query itself on the list path.
   */
  async rows(sql: string, params: readonly unknown[]): Promise<unknown[][]> {
    if (this.kind === 'sqlite') {
      return this.statement(sql, true).all(
        ...params.map(sqliteValue),
      ) as unknown[][];
    }
    const rows = await this.all<Record<string, unknown>>(sql, params);
    return rows.map((row) => Object.values(row));
  }

  private statement(sql: string, raw = false): Statement {
    const cache = raw ? this.rawStatements : this.statements;
    let statement = cache.get(sql);
    if (!statement) {
      if (cache.size >= MAX_CACHED_STATEMENTS) cache.clear();
      const connection = (
        this.db.driver as unknown as { databaseConnection: SqliteConnection }
      ).databaseConnection;
      statement = connection.prepare(sql);
      if (raw) statement.raw(true);
      cache.set(sql, statement);
    }
    return statement;
  }
}

function sqliteValue(value: unknown): unknown {
  return typeof value === 'boolean' ? (value ? 1 : 0) : value;
}
