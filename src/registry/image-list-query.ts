export const SORT_KEYS = [
  'name',
  'status',
  'container_format',
  'disk_format',
  'size',
  'id',
  'created_at',
  'updated_at',
] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export type SortDir = 'asc' | 'desc';

/** Filters of an image list, already validated and typed by the API layer. */
export interface ImageListFilters {
  name?: string;
  status?: string;
  container_format?: string;
  disk_format?: string;
  min_ram?: number;
  min_disk?: number;
  size_min?: number;
  size_max?: number;
  /** Normalised timestamp: only images updated after it (deleted ones included). */
  changes_since?: string;
  protected?: boolean;
  /** true: public only; false: non-public only. */
  is_public?: boolean;
  /** Admin only: true lists deleted images. */
  deleted?: boolean;
  properties?: Record<string, string>;
}

export interface ImageListQuery {
  filters: ImageListFilters;
  limit: number;
  marker?: string;
  sortKey: SortKey;
  sortDir: SortDir;
  /** Admins see every image unless this is set (Glance's admin_as_user). */
  adminAsUser: boolean;
}
