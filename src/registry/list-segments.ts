import type { SortDir, SortKey } from './image-list-query.js';

/** Columns of the sort keys; each has an index (deleted, column, created_at, id) to walk. */
export const SORT_COLUMNS: Record<SortKey, string> = {
  name: 'i.name',
  status: 'i.status',
  container_format: 'i.container_format',
  disk_format: 'i.disk_format',
  size: 'i.size',
  id: 'i.id',
  created_at: 'i.created_at',
  updated_at: 'i.updated_at',
};

/** Sort keys whose column may be NULL: NULLs sort first ascending, last descending. */
const NULLABLE = new Set<SortKey>([
  'name',
  'container_format',
  'disk_format',
  'size',
  'updated_at',
]);

/** One index range of a page: extra WHERE terms and their parameters. */
export interface ListSegment {
  where: string;
  params: unknown[];
  /**
   * The first key is NULL throughout: order by the others only (MariaDB does
   * not treat `k IS NULL` as a constant and would sort).
   */
  firstKeyNull?: boolean;
}

/** The ordering keys of a listing: the sort key, then created_at and id as tie-breakers. */
export function listKeys(sortKey: SortKey): SortKey[] {
  // An id is unique: nothing can tie with it.
  if (sortKey === 'id') return ['id'];
  const keys: SortKey[] = [sortKey];
  for (const k of ['created_at', 'id'] as const)
    if (!keys.includes(k)) keys.push(k);
  return keys;
}

/**
 * A page in (k0, k1, ...) order as a sequence of index ranges, each of them an
 * equality prefix and at most one range on the next key, read one after the
 * other until the page is full. Every range is a seek plus an in-order walk on
 * every database: no OR of row comparisons that a planner (MariaDB's above
 * all) turns into a scan from the start of the index, and no COALESCE that no
 * plain index can serve. A nullable first key splits into its NULL rows and
 * the others, which keeps PostgreSQL's NULLS LAST default out of the order.
 *
 * `marker`: the sort-key values of the row the page starts after.
 */
export function listSegments(
  keys: SortKey[],
  dir: SortDir,
  marker?: readonly unknown[],
): ListSegment[] {
  const [first, ...rest] = keys;
  const column = SORT_COLUMNS[first];
  const op = dir === 'asc' ? '>' : '<';
  const nullable = NULLABLE.has(first);
  const isNull: ListSegment = {
    where: `${column} IS NULL`,
    params: [],
    firstKeyNull: true,
  };
  const notNull: ListSegment = { where: `${column} IS NOT NULL`, params: [] };

  if (!marker) {
    if (!nullable) return [{ where: '', params: [] }];
    return dir === 'asc' ? [isNull, notNull] : [notNull, isNull];
  }

  /** Rows after the marker among those whose first key equals the marker's (or is NULL with it). */
  const tails = (head: ListSegment): ListSegment[] => {
    const out: ListSegment[] = [];
    for (let i = rest.length - 1; i >= 0; i--) {
      const terms = head.where ? [head.where] : [];
      const params = [...head.params];
      for (let j = 0; j < i; j++) {
        terms.push(`${SORT_COLUMNS[rest[j]]} = ?`);
        params.push(marker[j + 1]);
      }
      terms.push(`${SORT_COLUMNS[rest[i]]} ${op} ?`);
      params.push(marker[i + 1]);
      out.push({
        where: terms.join(' AND '),
        params,
        firstKeyNull: head.firstKeyNull,
      });
    }
    return out;
  };

  const value = marker[0];
  if (value === null || value === undefined) {
    // The marker is among the NULL rows: the rest of them, then (ascending) every non-NULL row.
    const segments = tails(isNull);
    if (dir === 'asc') segments.push(notNull);
    return segments;
  }
  const segments = tails({ where: `${column} = ?`, params: [value] });
  // `k0 > v` / `k0 < v` never matches NULL: descending, the NULL rows come last.
  segments.push({ where: `${column} ${op} ?`, params: [value] });
  if (nullable && dir === 'desc') segments.push(isNull);
  return segments;
}
