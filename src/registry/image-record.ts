/** Glance's image statuses (v1). */
export type ImageStatus =
  | 'queued'
  | 'saving'
  | 'active'
  | 'killed'
  | 'deleted'
  | 'pending_delete';


export interface LocationData {
  url: string;
  metadata: Record<string, unknown>;
}

/**
 * An image as the registry returns it, keyed as Glance v1 serialises it.
 * `location` and `location_data` are internal: the redaction interceptor
 * strips them from everything that leaves the service.
 */
export interface ImageRecord {
  id: string;
  name: string | null;
  size: number | null;
  virtual_size: number | null;
  disk_format: string | null;
  container_format: string | null;
  status: ImageStatus;
  is_public: boolean;
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  min_disk: number;
  min_ram: number;
  owner: string | null;
  protected: boolean;
  created_at: string;
  updated_at: string | null;
  deleted_at: string | null;
  deleted: boolean;
  properties: Record<string, string | null>;
  /** Loaded for single-image reads only (lists never carry them). */
  location?: string | null;
  location_data?: LocationData[];
}

/** Core (non-property) fields a create or update may set. */
export interface ImageFields {
  id?: string;
  name?: string | null;
  size?: number | null;
  virtual_size?: number | null;
  disk_format?: string | null;
  container_format?: string | null;
  status?: ImageStatus;
  is_public?: boolean;
  checksum?: string | null;
  os_hash_algo?: string | null;
  os_hash_value?: string | null;
  min_disk?: number;
  min_ram?: number;
  owner?: string | null;
  protected?: boolean;
}
