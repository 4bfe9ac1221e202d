import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestContext } from '../../src/common/request-context.js';
import { buildDataSourceOptions } from '../../src/registry/data-source-options.js';
import { ImageEntity } from '../../src/registry/entities/image.entity.js';
import { ImageMemberEntity } from '../../src/registry/entities/image-member.entity.js';
import { ImagePropertyEntity } from '../../src/registry/entities/image-property.entity.js';
import { ImageRegistry } from '../../src/registry/image.registry.js';
import {
  SORT_KEYS,
  type ImageListFilters,
  type ImageListQuery,
  type SortKey,
} from '../../src/registry/image-list-query.js';
import { runMigrations } from '../../src/registry/run-migrations.js';
import {
  createTestDatabase,
  TEST_DATABASE,
  type TestDatabase,
} from '../support/test-database.js';

/**
 * The query plans of GET /v1/images for every sort key and filter, first and
 * marker pages, admin and member: a page must come from an index walked in
 * the requested order (no full scan, no sort of the table), except where a
 * selective range or property filter reads its few matches from its own
 * index and sorts those. Plans, not timings, so it stays fast and steady;
 * bench/ (BENCH_PHASES=scale) measures the times at 100,000 images.
 */
const IMAGES = 3000;
/**
 * MariaDB: rows an ordered page of 20 may read (visibility and filters skip
 * some on the way); reading from the wrong end of an index reads thousands.
 */
const MAX_ROWS_READ_PER_PAGE = 400;
const MEMBER = 'tenant-0';
const ts = (i: number) =>
  new Date(Date.UTC(2026, 0, 1) + i * 10_000).toISOString().replace('Z', '000');

function image(i: number) {
  // The high bits of a multiplicative hash: columns picked with different
  // salts do not follow from each other (or from i modulo a small number),
  // so no filter or visibility rule empties a whole group of the listing.
  const pick = <T>(list: T[], salt: number) =>
    list[
      (Math.imul(i * 31 + salt * 104_729, 2_654_435_761) >>> 16) % list.length
    ];
  return {
    id: `00000000-0000-4000-a000-${String(i).padStart(12, '0')}`,
    name: i % 97 === 0 ? null : `image-${pick([...Array(300).keys()], 1)}`,
    diskFormat: pick(['raw', 'qcow2', 'vmdk', 'iso', null], 2),
    containerFormat: pick(['bare', 'ovf', 'ami', null], 3),
    size: i % 50 === 0 ? null : (i * 2_654_435_761) % 10_000_000_000,
    // Six statuses against five disk formats: a status never follows from the format.
    status: pick(
      ['active', 'active', 'active', 'active', 'queued', 'killed'],
      4,
    ),
    isPublic: i % 3 === 0,
    minRam: pick([0, 512, 1024, 4096], 5),
    minDisk: pick([0, 10, 40], 6),
    owner: `tenant-${i % 50}`,
    protected: i % 20 === 0,
    createdAt: ts(i),
    updatedAt: ts(i + (i % 13) * 100),
    deleted: i % 40 === 0,
  };
}

interface Case {
  label: string;
  filters?: ImageListFilters;
  sortKey?: SortKey;
  sortDir?: 'asc' | 'desc';
  /** A selective filter may read its matches from its own index and sort them. */
  maySort?: boolean;
}

const CASES: Case[] = [
  ...SORT_KEYS.flatMap((sortKey) =>
    (['asc', 'desc'] as const).map((sortDir) => ({
      label: `sort_key=${sortKey}&sort_dir=${sortDir}`,
      sortKey,
      sortDir,
    })),
  ),
  { label: 'name', filters: { name: 'image-7' } },
  { label: 'status', filters: { status: 'queued' } },
  { label: 'container_format', filters: { container_format: 'ovf' } },
  { label: 'disk_format', filters: { disk_format: 'raw' } },
  // A filter on one column and a sort on another: walking the sort key's index or sorting the
  // filter's matches is the planner's choice from its statistics; either reads from an index.
  {
    label: 'disk_format&sort_key=size',
    filters: { disk_format: 'raw' },
    sortKey: 'size',
    maySort: true,
  },
  { label: 'min_ram', filters: { min_ram: 4096 } },
  { label: 'min_disk', filters: { min_disk: 40 } },
  { label: 'is_public=true', filters: { is_public: true } },
  { label: 'is_public=false', filters: { is_public: false } },
  { label: 'protected', filters: { protected: true } },
  { label: 'changes-since', filters: { changes_since: ts(IMAGES - 30) } },
  { label: 'size_min', filters: { size_min: 9_900_000_000 }, maySort: true },
  { label: 'size_max', filters: { size_max: 100_000_000 }, maySort: true },
  {
    label: 'size_min&size_max',
    filters: { size_min: 10, size_max: 100_000_000 },
    maySort: true,
  },
  {
    label: 'property (many images)',
    filters: { properties: { os_distro: 'ubuntu' } },
  },
  {
    label: 'property (one image)',
    filters: { properties: { build_id: 'b-42' } },
    maySort: true,
  },
];

/** What betrays a plan that reads the whole table or sorts it, per database. */
async function planProblems(
  ds: DataSource,
  sql: string,
  params: unknown[],
  ordered: boolean,
): Promise<string[]> {
  if (TEST_DATABASE === 'sqlite') {
    const rows: { id: number; parent: number; detail: string }[] =
      await ds.query(
        `EXPLAIN QUERY PLAN ${sql}`,
        params.map((v) => (typeof v === 'boolean' ? Number(v) : v)),
      );
    // The page is the co-routine (the inner SELECT); the outer query only reads its rows in order.
    const parent = new Map(rows.map((r) => [r.id, r.parent]));
    const page = new Set(
      rows.filter((r) => r.detail.startsWith('CO-ROUTINE')).map((r) => r.id),
    );
    const inPage = (id: number): boolean => {
      for (
        let at = parent.get(id);
        at !== undefined && at !== 0;
        at = parent.get(at)
      )
        if (page.has(at)) return true;
      return false;
    };
    if (page.size !== 1)
      return [
        `not one page co-routine: ${rows.map((r) => r.detail).join('; ')}`,
      ];
    return rows
      .filter(
        (r) =>
          (inPage(r.id) && /^SCAN i$/.test(r.detail)) ||
          /AUTOMATIC/.test(r.detail) ||
          (ordered && /TEMP B-TREE FOR ORDER BY/.test(r.detail)),
      )
      .map((r) => r.detail);
  }
  if (TEST_DATABASE === 'postgres') {
    const runner = ds.createQueryRunner();
    try {
      await runner.startTransaction();
      // On a few thousand rows a scan and sort is cheapest; the question is whether the index path exists.
      await runner.query('SET LOCAL enable_seqscan = off');
      await runner.query('SET LOCAL enable_sort = off');
      let n = 0;
      const rows: { 'QUERY PLAN': string }[] = await runner.query(
        `EXPLAIN ${sql.replace(/\?/g, () => `$${++n}`)}`,
        params,
      );
      await runner.rollbackTransaction();
      // The top Sort orders the page's own rows (at most LIMIT) after the properties are added.
      const lines = rows
        .map((r) => r['QUERY PLAN'])
        .filter((l, n) => n > 0 || !/^Sort\b/.test(l));
      // An Incremental Sort only orders ties met while walking an index in order: bounded by the page.
      return lines.filter(
        (l) =>
          /Seq Scan on images/.test(l) ||
          (ordered && /^\s*(->\s*)?Sort\s+\(/.test(l)),
      );
    } finally {
      await runner.release();
    }
  }
  // MariaDB has no switch to rule out scans and sorts. Its plan can also look
  // right and still read from the wrong end: asked for a descending page it
  // may turn the range on the sort index into a `ref` on its `deleted` prefix
  // and read back from the end of the table. So the statement runs (ANALYZE)
  // and an ordered page must have read about a page's worth of rows: no full
  // scan, no sort of rows that came from no index, no walk from the far end.
  const rows: {
    table: string;
    type: string;
    Extra: string | null;
    key: string | null;
    r_rows: string | number | null;
  }[] = await ds.query(`ANALYZE ${sql}`, params);
  return rows
    .filter((r) => r.table === 'i')
    .filter(
      (r) =>
        r.type === 'ALL' ||
        (ordered && r.key === null && /filesort/.test(r.Extra ?? '')) ||
        (ordered && Number(r.r_rows) > MAX_ROWS_READ_PER_PAGE),
    )
    .map(
      (r) => `${r.type} key=${r.key} ${r.Extra ?? ''} read ${r.r_rows} rows`,
    );
}

describe(`list query plans (${TEST_DATABASE})`, () => {
  let dir: string;
  let database: TestDatabase;
  let ds: DataSource;
  let registry: ImageRegistry;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'glance-plans-'));
    database = await createTestDatabase(dir);
    ds = new DataSource(buildDataSourceOptions(database.url));
    await ds.initialize();
    await runMigrations(ds);
    const images = Array.from({ length: IMAGES }, (_, i) => image(i));
    for (let start = 0; start < IMAGES; start += 500) {
      const chunk = images.slice(start, start + 500);
      const insert = (entity: object, rows: object[]) =>
        ds
          .createQueryBuilder()
          .insert()
          .into(entity as never)
          .values(rows)
          .updateEntity(false)
          .execute();
      await insert(ImageEntity, chunk);
      await insert(
        ImagePropertyEntity,
        chunk.flatMap((img, k) => [
          {
            imageId: img.id,
            name: 'os_distro',
            value: ['ubuntu', 'fedora'][k % 2],
            createdAt: img.createdAt,
            deleted: false,
          },
          {
            imageId: img.id,
            name: 'build_id',
            value: `b-${start + k}`,
            createdAt: img.createdAt,
            deleted: false,
          },
        ]),
      );
      await insert(
        ImageMemberEntity,
        chunk
          .filter(
            (img) =>
              !img.isPublic &&
              img.owner !== MEMBER &&
              Number(img.id.slice(-4)) % 4 === 0,
          )
          .map((img) => ({
            imageId: img.id,
            member: MEMBER,
            createdAt: img.createdAt,
            deleted: false,
          })),
      );
    }
    if (TEST_DATABASE === 'sqlite') await ds.query('ANALYZE');
    else if (TEST_DATABASE === 'postgres') await ds.query('ANALYZE');
    else
      await ds.query('ANALYZE TABLE images, image_properties, image_members');
    registry = new ImageRegistry(ds);
  });

  afterAll(async () => {
    if (ds?.isInitialized) await ds.destroy();
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const callers = [
    [
      'admin',
      new RequestContext('admin-tenant', 'admin', ['admin'], true),
      false,
    ],
    ['member', new RequestContext(MEMBER, 'user', ['member'], false), false],
  ] as const;

  it('reads every page from an index in the requested order', async () => {
    const problems: string[] = [];
    let statements = 0;
    // A public active image with every sort column set: visible to every caller.
    const marker = image(3).id;
    for (const c of CASES) {
      for (const [who, ctx, adminAsUser] of callers) {
        for (const withMarker of [false, true]) {
          const query: ImageListQuery = {
            filters: c.filters ?? {},
            limit: 20,
            sortKey: c.sortKey ?? 'created_at',
            sortDir: c.sortDir ?? 'desc',
            adminAsUser,
            marker: withMarker ? marker : undefined,
          };
          for (const { sql, params } of await registry.listStatements(
            ctx,
            query,
          )) {
            statements++;
            // The last parameter is the page size (LIMIT ?): planners stop walking an index there.
            for (const p of await planProblems(
              ds,
              sql,
              [...params, 20],
              !c.maySort,
            ))
              problems.push(
                `${c.label} ${who}${withMarker ? ' marker' : ''}: ${p}`,
              );
          }
        }
      }
    }
    expect(statements).toBeGreaterThan(CASES.length * 4);
    expect(problems).toEqual([]);
  });

  it('the listing still answers: pages of the member follow each other without gaps', async () => {
    const ctx = callers[1][1];
    const query: ImageListQuery = {
      filters: {},
      limit: 7,
      sortKey: 'name',
      sortDir: 'asc',
      adminAsUser: false,
    };
    const all = await registry.list(ctx, { ...query, limit: IMAGES });
    const walked: string[] = [];
    let marker: string | undefined;
    for (let page = 0; page < 10; page++) {
      const got = await registry.list(ctx, { ...query, marker });
      walked.push(...got.map((i) => i.id));
      marker = got[got.length - 1]?.id;
    }
    expect(all.length).toBeGreaterThan(70);
    expect(walked).toEqual(all.slice(0, 70).map((i) => i.id));
    expect(all[0].name).toBeNull();
  });
});
