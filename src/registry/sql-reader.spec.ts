import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataSourceOptions } from './data-source-options.js';
import { SqlReader } from './sql-reader.js';

// The list page cache (LIST_PAGE_CACHE_SIZE): a page is kept until the
// database changes, and not at all when the size is 0.
describe('SqlReader.pageRows on SQLite', () => {
  let dir: string;
  let db: DataSource;
  const page = 'SELECT n FROM t ORDER BY n LIMIT ?';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sql-reader-'));
    db = new DataSource(buildDataSourceOptions(`sqlite:${join(dir, 'r.sqlite')}`));
    await db.initialize();
    await db.query('CREATE TABLE t (n INTEGER)');
    await db.query('INSERT INTO t VALUES (1), (2)');
  });
  afterAll(async () => {
    await db?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a repeated page from memory until a write, then reads it again', async () => {
    const reader = new SqlReader(db);
    const first = await reader.pageRows(page, [10]);
    expect(first).toEqual([[1], [2]]);
    expect(await reader.pageRows(page, [10])).toBe(first);
    await db.query('INSERT INTO t VALUES (3)');
    const after = await reader.pageRows(page, [10]);
    expect(after).toEqual([[1], [2], [3]]);
    expect(after).not.toBe(first);
  });

  it('keeps no page with a size of 0', async () => {
    const reader = new SqlReader(db, 0);
    const first = await reader.pageRows(page, [10]);
    const again = await reader.pageRows(page, [10]);
    expect(again).toEqual(first);
    expect(again).not.toBe(first);
  });

  it('keeps at most the given number of pages, dropping the oldest', async () => {
    const reader = new SqlReader(db, 2);
    const one = await reader.pageRows(page, [1]);
    const two = await reader.pageRows(page, [2]);
    await reader.pageRows(page, [3]);
    expect(await reader.pageRows(page, [2])).toBe(two);
    expect(await reader.pageRows(page, [1])).not.toBe(one);
  });
});
