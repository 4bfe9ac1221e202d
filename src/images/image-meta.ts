/** Image metadata as decoded from x-image-meta-* request headers (Glance's image_meta). */
export interface ImageMeta {
  id?: string;
  name?: string | null;
  size?: number;
  disk_format?: string | null;
  container_format?: string | null;
  checksum?: string | null;
  os_hash_algo?: string | null;
  os_hash_value?: string | null;
  is_public?: boolean;
  protected?: boolean;
  min_ram?: number;
  min_disk?: number;
  owner?: string | null;
  status?: string | null;
  location?: string | null;
  store?: string | null;
  copy_from?: string | null;
  uri?: string | null;
  created_at?: string | null;
  updated_at?: string | null;
  deleted_at?: string | null;
  deleted?: boolean;
  properties: Record<string, string | null>;
}

/** Core keys a client may send as x-image-meta-<key> (Glance's IMAGE_META_HEADERS). */
export const IMAGE_META_KEYS = [
  'location',
  'size',
  'is_public',
  'disk_format',
  'container_format',
  'name',
  'status',
  'copy_from',
  'uri',
  'checksum',
  // Beyond Icehouse: sent back by this service, so glance-replicator copies them.
  'os_hash_algo',
  'os_hash_value',
  'created_at',
  'updated_at',
  'deleted_at',
  'min_ram',
  'min_disk',
  'owner',
  'store',
  'id',
  'protected',
  'deleted',
] as const;
