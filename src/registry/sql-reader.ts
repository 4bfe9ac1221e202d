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

/** Default of LIST_PAGE_CACHE_SIZE: list pages kept while the database is unchanged. */
export const DEFAULT_CACHED_PAGES = 256;

/** A statement prepared with its boolean parameters written into the SQL. */
interface PreparedRead {
  statement: Statement;
  /** Positions of the parameters still bound (the non-boolean ones). */
  bound: number[];
}

/**
 * Read queries on the hot paths (list, show, HEAD) as plain SQL with `?`
 * placeholders: on SQLite through cached better-sqlite3 statements, elsewhere
 * through the driver (placeholders rewritten to $n for PostgreSQL). TypeORM's
 * query builder and entity hydration cost more than the queries themselves here.
 */
export class SqlReader {
  private readonly statements = new Map<string, PreparedRead>();
  private readonly rawStatements = new Map<string, PreparedRead>();
  /** SQLite list pages (row arrays) valid for `pagesVersion`; insertion order = age. */
  private readonly pages = new Map<string, unknown[][]>();
  private pagesVersion = '';
  private versionStatement: Statement | undefined;
  readonly kind: 'sqlite' | 'postgres' | 'mysql';

  /** `maxPages` 0 turns the SQLite list page cache off (every page is read again). */
  constructor(
    private readonly db: DataSource,
    private readonly maxPages = DEFAULT_CACHED_PAGES,
  ) {
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
    if (this.kind === 'sqlite') return this.sqliteAll(sql, params, false) as T[];
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
    if (this.kind === 'sqlite')
      return this.sqliteAll(sql, params, true) as unknown[][];
    const rows = await this.all<Record<string, unknown>>(sql, params);
    return rows.map((row) => Object.values(row));
  }

  /**
   * `rows()` for list pages, which clients such as Nova and Horizon repeat:
   * on SQLite a page is read again only when the database changed since it
   * was read. `total_changes()` counts this connection's writes (every write
   * of this process goes through it), `data_version` changes when another
   * connection (another worker process, a scrubber run) committed. Both are
   * one cheap statement; any change drops every page.
   */
  async pageRows(
    sql: string,
    params: readonly unknown[],
  ): Promise<unknown[][]> {
    if (this.kind !== 'sqlite' || this.maxPages === 0)
      return this.rows(sql, params);
    const version = this.sqliteVersion();
    if (version !== this.pagesVersion) {
      this.pages.clear();
      this.pagesVersion = version;
    }
    const key = `${JSON.stringify(params)}\u0000${sql}`;
    let rows = this.pages.get(key);
    if (!rows) {
      rows = this.sqliteAll(sql, params, true) as unknown[][];
      if (this.pages.size >= this.maxPages) {
        this.pages.delete(this.pages.keys().next().value as string);
      }
      this.pages.set(key, rows);
    }
    return rows;
  }

  private sqliteVersion(): string {
    this.versionStatement ??= this.connection()
      .prepare('SELECT total_changes(), data_version FROM pragma_data_version')
      .raw(true);
    const [[changes, dataVersion]] = this.versionStatement.all() as [
      [number, number],
    ];
    return `${changes}:${dataVersion}`;
  }

  private connection(): SqliteConnection {
    return (
      this.db.driver as unknown as { databaseConnection: SqliteConnection }
    ).databaseConnection;
  }

  /**
   * Booleans (deleted, is_public, protected flags) go into the SQL as 0/1
   * rather than as bound parameters: this better-sqlite3 is built with
   * SQLITE_ENABLE_STAT4, and a statement whose bound value on an indexed
   * column may change its plan is re-prepared at every bind (about 35-40 us
   * per statement here, more than reading a page of 20 rows). Two values per
   * flag keep the statement shapes few.
   */
  private sqliteAll(
    sql: string,
    params: readonly unknown[],
    raw: boolean,
  ): unknown[] {
    let shape = '';
    for (const p of params)
      shape += typeof p === 'boolean' ? (p ? '1' : '0') : '?';
    const key = `${shape}\u0000${sql}`;
    const cache = raw ? this.rawStatements : this.statements;
    let prepared = cache.get(key);
    if (!prepared) {
      if (cache.size >= MAX_CACHED_STATEMENTS) cache.clear();
      prepared = this.prepare(sql, shape, raw);
      cache.set(key, prepared);
    }
    const values = prepared.bound.map((n) => params[n]);
    return prepared.statement.all(...values);
  }

  private prepare(sql: string, shape: string, raw: boolean): PreparedRead {
    // The hot SQL has no '?' inside string literals: each one is a placeholder.
    const parts = sql.split('?');
    if (parts.length - 1 !== shape.length) {
      throw new Error(
        `${shape.length} parameters for ${parts.length - 1} placeholders`,
      );
    }
    let text = parts[0];
    const bound: number[] = [];
    for (let n = 0; n < shape.length; n++) {
      if (shape[n] === '?') {
        text += '?';
        bound.push(n);
      } else {
        text += shape[n];
      }
      text += parts[n + 1];
    }
    const statement = this.connection().prepare(text);
    if (raw) statement.raw(true);
    return { statement, bound };
  }
}
