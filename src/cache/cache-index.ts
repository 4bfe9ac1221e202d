import Database from 'better-sqlite3';
import { join } from 'node:path';

/** One cached image as the management API lists it (times in epoch seconds). */
export interface CacheEntry {
  image_id: string;
  hits: number;
  last_accessed: number;
  last_modified: number;
  size: number;
}

/**
 * The cache's metadata (Glance's drivers/sqlite.py): one small SQLite file
 * inside the cache folder, in WAL mode with a busy timeout, so every worker
 * process of a node sees the same hits, access times and sizes. Fills in
 * progress are recorded with the filler's pid so another process can tell a
 * live fill from one whose process died.
 */
export class CacheIndex {
  private readonly db: Database.Database;
  private readonly stmts: {
    get: Database.Statement;
    put: Database.Statement;
    hit: Database.Statement;
    remove: Database.Statement;
    all: Database.Statement;
    total: Database.Statement;
    lru: Database.Statement;
    claimFill: Database.Statement;
    getFill: Database.Statement;
    endFill: Database.Statement;
    fills: Database.Statement;
  };

  constructor(dir: string) {
    this.db = new Database(join(dir, 'cache.db'), { timeout: 5000 });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS cached_images (
        image_id TEXT PRIMARY KEY,
        last_accessed REAL NOT NULL DEFAULT 0,
        last_modified REAL NOT NULL,
        size INTEGER NOT NULL,
        hits INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE IF NOT EXISTS fills (
        image_id TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        started REAL NOT NULL
      );`);
    this.stmts = {
      get: this.db.prepare('SELECT * FROM cached_images WHERE image_id = ?'),
      put: this.db.prepare(
        'INSERT OR REPLACE INTO cached_images (image_id, last_accessed, last_modified, size, hits) VALUES (?, 0, ?, ?, 0)',
      ),
      hit: this.db.prepare(
        'UPDATE cached_images SET hits = hits + 1, last_accessed = ? WHERE image_id = ?',
      ),
      remove: this.db.prepare('DELETE FROM cached_images WHERE image_id = ?'),
      all: this.db.prepare('SELECT * FROM cached_images ORDER BY image_id'),
      total: this.db.prepare(
        'SELECT COUNT(*) AS entries, COALESCE(SUM(size), 0) AS size FROM cached_images',
      ),
      // Recency is the later of the last hit and the write: a fresh entry is not "never used".
      lru: this.db.prepare(
        'SELECT * FROM cached_images ORDER BY MAX(last_accessed, last_modified), image_id',
      ),
      claimFill: this.db.prepare(
        'INSERT OR REPLACE INTO fills (image_id, pid, started) VALUES (?, ?, ?)',
      ),
      getFill: this.db.prepare(
        'SELECT pid, started FROM fills WHERE image_id = ?',
      ),
      endFill: this.db.prepare(
        'DELETE FROM fills WHERE image_id = ? AND pid = ?',
      ),
      fills: this.db.prepare('SELECT image_id, pid FROM fills'),
    };
  }

  get(id: string): CacheEntry | null {
    return (this.stmts.get.get(id) as CacheEntry | undefined) ?? null;
  }

  put(id: string, size: number): void {
    this.stmts.put.run(id, Date.now() / 1000, size);
  }

  recordHit(id: string): void {
    this.stmts.hit.run(Date.now() / 1000, id);
  }

  remove(id: string): boolean {
    return this.stmts.remove.run(id).changes > 0;
  }

  list(): CacheEntry[] {
    return this.stmts.all.all() as CacheEntry[];
  }

  totals(): { entries: number; size: number } {
    return this.stmts.total.get() as { entries: number; size: number };
  }

  /** Entries, least recently used first. */
  leastRecentlyUsed(): CacheEntry[] {
    return this.stmts.lru.all() as CacheEntry[];
  }

  claimFill(id: string, pid: number): void {
    this.stmts.claimFill.run(id, pid, Date.now() / 1000);
  }

  fillOwner(id: string): number | null {
    const row = this.stmts.getFill.get(id) as { pid: number } | undefined;
    return row?.pid ?? null;
  }

  endFill(id: string, pid: number): void {
    this.stmts.endFill.run(id, pid);
  }

  fills(): { image_id: string; pid: number }[] {
    return this.stmts.fills.all() as { image_id: string; pid: number }[];
  }

  close(): void {
    this.db.close();
  }
}
