import { Injectable, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Brackets, DataSource, EntityManager, In } from 'typeorm';
import { randomUUID } from 'node:crypto';
import type { RequestContext } from '../common/request-context.js';
import { AppConfig } from '../config/app-config.js';
import { nowTimestamp } from '../common/timestamps.js';
import { ApiNodeEntity } from './entities/api-node.entity.js';
import { ImageEntity } from './entities/image.entity.js';
import { ImageLocationEntity } from './entities/image-location.entity.js';
import { ImageMemberEntity } from './entities/image-member.entity.js';
import { ImagePropertyEntity } from './entities/image-property.entity.js';
import type {
  ImageListFilters,
  ImageListQuery,
  SortKey,
} from './image-list-query.js';
import { listKeys, listSegments, SORT_COLUMNS } from './list-segments.js';
import type {
  ImageFields,
  ImageRecord,
  ImageStatus,
  LocationData,
} from './image-record.js';
import { RegistryError, RegistryErrorCode } from './registry.error.js';
import { serialTransaction } from './serial-transaction.js';
import { SqlReader } from './sql-reader.js';

/**
 * Below this many matching rows a property filter reads its images from the
 * (name, value) index and sorts them; above it, walking the sort order finds
 * a page after about limit x images / matches rows.
 */
const SPARSE_PROPERTY_ROWS = 1000;

/** Below this many matches a filtered page sorts its matches; above, it walks the sort order. */
const SPARSE_FILTER_ROWS = 1000;

/** The index each sort key walks (see migration ListingIndexes). */
const SORT_INDEXES: Record<SortKey, string> = {
  name: 'ix_images_list_name',
  status: 'ix_images_list_status',
  container_format: 'ix_images_list_container_format',
  disk_format: 'ix_images_list_disk_format',
  size: 'ix_images_list_size',
  id: 'ix_images_list_id',
  created_at: 'ix_images_listing',
  updated_at: 'ix_images_list_updated_at',
};

/** The listing index of each filter with one (see migration ListingIndexes). */
type IndexedFilter = keyof Omit<
  ImageListFilters,
  'deleted' | 'properties' | 'changes_since'
>;
const FILTER_INDEXES: Record<IndexedFilter, string> = {
  name: 'ix_images_list_name',
  status: 'ix_images_list_status',
  container_format: 'ix_images_list_container_format',
  disk_format: 'ix_images_list_disk_format',
  size_min: 'ix_images_list_size',
  size_max: 'ix_images_list_size',
  min_ram: 'ix_images_list_min_ram',
  min_disk: 'ix_images_list_min_disk',
  is_public: 'ix_images_list_is_public',
  protected: 'ix_images_list_protected',
};

/** Filters with their own listing index, and the sort key of the same column (if any). */
const FILTER_SORT_KEYS: [IndexedFilter, SortKey | null][] = [
  ['name', 'name'],
  ['status', 'status'],
  ['container_format', 'container_format'],
  ['disk_format', 'disk_format'],
  ['size_min', 'size'],
  ['size_max', 'size'],
  ['min_ram', null],
  ['min_disk', null],
  ['is_public', null],
  ['protected', null],
];

/** Columns of an images row as the read queries select them. */
const IMAGE_COLUMNS =
  'i.id, i.name, i.size, i.virtual_size, i.disk_format, i.container_format, i.status, i.is_public, i.checksum, i.os_hash_algo, i.os_hash_value, i.min_disk, i.min_ram, i.owner, i.protected, i.created_at, i.updated_at, i.deleted_at, i.deleted';

/** A row selected as IMAGE_COLUMNS followed by the properties column, in that order. */
type ImageRow = [
  id: string,
  name: string | null,
  size: number | string | null,
  virtualSize: number | string | null,
  diskFormat: string | null,
  containerFormat: string | null,
  status: string,
  isPublic: boolean | number,
  checksum: string | null,
  osHashAlgo: string | null,
  osHashValue: string | null,
  minDisk: number | string,
  minRam: number | string,
  owner: string | null,
  isProtected: boolean | number,
  createdAt: string,
  updatedAt: string | null,
  deletedAt: string | null,
  deleted: boolean | number,
  properties: PropertiesColumn,
];

/** The properties column: JSON text (SQLite, MySQL), an object (PostgreSQL), NULL when none. */
type PropertiesColumn = string | Record<string, string | null> | null;

function parseProperties(
  column: PropertiesColumn,
): Record<string, string | null> {
  if (column === null) return {};
  return typeof column === 'string' ? JSON.parse(column) : column;
}

/** BIGINT arrives as a string from PostgreSQL and MySQL. */
function toNumber(value: number | string | null): number | null {
  return value === null ? null : Number(value);
}

const FIELD_COLUMNS: Record<keyof ImageFields, keyof ImageEntity> = {
  id: 'id',
  name: 'name',
  size: 'size',
  virtual_size: 'virtualSize',
  disk_format: 'diskFormat',
  container_format: 'containerFormat',
  status: 'status',
  is_public: 'isPublic',
  checksum: 'checksum',
  os_hash_algo: 'osHashAlgo',
  os_hash_value: 'osHashValue',
  min_disk: 'minDisk',
  min_ram: 'minRam',
  owner: 'owner',
  protected: 'protected',
};

export interface NewImage extends ImageFields {
  status: ImageStatus;
  properties: Record<string, string | null>;
  location?: LocationData | null;
  /**
   * IMAGE_COUNT_QUOTA: refuse (QuotaExceeded) when the owner already owns this
   * many images, counted inside the create transaction so that concurrent
   * creates, in any process of any node, cannot both pass.
   */
  ownedLimit?: number;
}

export interface ImageUpdate {
  fields?: ImageFields;
  properties?: Record<string, string | null>;
  /** Drop properties not in `properties` (x-glance-registry-purge-props). */
  purgeProps?: boolean;
  /** Replace the image's location. */
  location?: LocationData;
  /** Only update when the image is in this state (atomic, Glance's from_state). */
  fromState?: ImageStatus;
  /** Record (or clear, with null) the API node running the image's upload. */
  uploadNode?: string | null;
  /** Record the process (worker) on that node running the upload. */
  uploadWorker?: string | null;
}

/**
 * The image registry: every SQL statement about images lives here.
 * Visibility rules follow Glance's registry (public, owned, shared; admins see all).
 */
@Injectable()
export class ImageRegistry {
  private readonly reader: SqlReader;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Optional() config?: AppConfig,
  ) {
    this.reader = new SqlReader(db, config?.LIST_PAGE_CACHE_SIZE);
  }

  async create(image: NewImage): Promise<ImageRecord> {
    const id = image.id ?? randomUUID();
    const now = nowTimestamp();
    await serialTransaction(this.db, async (tx) => {
      if (image.ownedLimit !== undefined && image.owner) {
        await this.lockOwner(tx, image.owner);
        const owned = await tx.countBy(ImageEntity, {
          owner: image.owner,
          deleted: false,
        });
        if (owned >= image.ownedLimit) {
          throw new RegistryError(
            RegistryErrorCode.QuotaExceeded,
            String(owned),
          );
        }
      }
      if (await tx.existsBy(ImageEntity, { id })) {
        throw new RegistryError(
          RegistryErrorCode.Duplicate,
          `An image with identifier ${id} already exists`,
        );
      }
      await tx.insert(ImageEntity, {
        ...this.toColumns(image),
        id,
        status: image.status,
        isPublic: image.is_public ?? false,
        protected: image.protected ?? false,
        minDisk: image.min_disk ?? 0,
        minRam: image.min_ram ?? 0,
        createdAt: now,
        updatedAt: now,
        deleted: false,
      });
      await this.writeProperties(tx, id, image.properties, false, now);
      if (image.location) await this.writeLocation(tx, id, image.location, now);
    });
    return this.mustGet(id);
  }

  /**
   * An image by id, with properties and (unless `withLocations` is false, for
   * reads whose answer never carries them) locations; deleted ones only when asked.
   */
  async get(
    id: string,
    showDeleted = false,
    withLocations = true,
  ): Promise<ImageRecord | null> {
    const rows = (await this.reader.rows(
      `SELECT ${IMAGE_COLUMNS}, ${this.propertiesColumn()} FROM images i WHERE i.id = ?${showDeleted ? '' : ' AND i.deleted = ?'}`,
      showDeleted ? [false, id] : [false, id, false],
    )) as ImageRow[];
    if (rows.length === 0) return null;
    const image = toRecord(rows[0]);
    if (!withLocations) return image;
    const locations = (
      await this.reader.all<{ value: string; meta_data: string | null }>(
        'SELECT value, meta_data FROM image_locations WHERE image_id = ? AND deleted = ? ORDER BY id',
        [id, false],
      )
    ).map((l) => ({
      url: l.value,
      metadata: l.meta_data ? JSON.parse(l.meta_data) : {},
    }));
    image.location = locations[0]?.url ?? null;
    image.location_data = locations;
    return image;
  }

  /** Glance's is_image_visible: admin, unowned, public, owned, or shared with the caller. */
  async isVisible(ctx: RequestContext, image: ImageRecord): Promise<boolean> {
    if (ctx.isAdmin || image.owner === null || image.is_public) return true;
    if (ctx.owner === null) return false;
    if (image.owner === ctx.owner) return true;
    const rows = await this.reader.all(
      'SELECT 1 FROM image_members m WHERE m.image_id = ? AND m.member = ? AND m.deleted = ?',
      [image.id, ctx.owner, false],
    );
    return rows.length > 0;
  }

  /**
   * A page of the images `ctx` may see; cost bounded by the page: each
   * statement walks an index in the requested order and stops at LIMIT
   * (see listSegments and the listing indexes in ARCHITECTURE.md).
   */
  async list(
    ctx: RequestContext,
    query: ImageListQuery,
  ): Promise<ImageRecord[]> {
    const limit = Math.max(0, Math.floor(query.limit));
    const images: ImageRecord[] = [];
    for (const statement of await this.listStatements(ctx, query)) {
      const remaining = limit - images.length;
      if (remaining <= 0) break;
      const rows = (await this.reader.pageRows(statement.sql, [
        ...statement.params,
        remaining,
      ])) as ImageRow[];
      for (const row of rows) images.push(toRecord(row));
    }
    return images;
  }

  /**
   * The statements that read a page, in order, each ending in `LIMIT ?` (the
   * rows still missing: the caller appends that parameter): the list path runs
   * them until the page is full; the query-plan test explains them. The
   * inner query picks the page's rows, the outer one adds their properties,
   * so a sort of many matches never aggregates properties for each of them.
   */
  async listStatements(
    ctx: RequestContext,
    query: ImageListQuery,
  ): Promise<{ sql: string; params: unknown[] }[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const sparse = await this.sparseProperties(query);
    this.filterClauses(query, where, params, sparse);
    const from = `images i${
      this.reader.kind === 'mysql'
        ? await this.mysqlIndexHint(query, sparse)
        : await this.sortIndexHint(query, where, params)
    }`;
    if (!ctx.isAdmin || query.adminAsUser)
      this.visibilityClause(ctx, where, params);

    const keys = listKeys(query.sortKey);
    let markerValues: unknown[] | undefined;
    if (query.marker !== undefined) {
      const marker = await this.get(query.marker, true);
      const showingDeleted =
        query.filters.deleted === true ||
        query.filters.changes_since !== undefined;
      if (
        !marker ||
        (marker.deleted && !showingDeleted) ||
        !(await this.isVisible(ctx, marker))
      ) {
        throw new RegistryError(
          RegistryErrorCode.InvalidMarker,
          'Invalid marker. Image could not be found.',
        );
      }
      markerValues = keys.map((k) => marker[k]);
    }

    const dir = query.sortDir === 'asc' ? 'ASC' : 'DESC';
    return listSegments(keys, query.sortDir, markerValues).map((segment) => {
      const terms = segment.where ? [...where, segment.where] : where;
      const order = (segment.firstKeyNull ? keys.slice(1) : keys)
        .map((k) => `${SORT_COLUMNS[k]} ${dir}`)
        .join(', ');
      const page =
        `SELECT i.* FROM ${from}` +
        (terms.length ? ` WHERE ${terms.join(' AND ')}` : '') +
        ` ORDER BY ${order} LIMIT ?`;
      return {
        sql: `SELECT ${IMAGE_COLUMNS}, ${this.propertiesColumn()} FROM (${page}) i ORDER BY ${order}`,
        params: [false, ...params, ...segment.params],
      };
    });
  }

  /**
   * An image's live properties as one JSON object column: a correlated
   * subquery, evaluated only for the rows returned, so a page or an image is
   * one statement. Its `deleted = ?` placeholder comes first in the parameters.
   */
  private propertiesColumn(): string {
    return `(SELECT ${this.reader.jsonObjectAgg('p.name', 'p.value')} FROM image_properties p WHERE p.image_id = i.id AND p.deleted = ?) AS properties`;
  }

  /**
   * Updates an image atomically. With `fromState` the UPDATE itself carries the
   * status condition, so two racing writers cannot both succeed.
   */
  async update(id: string, change: ImageUpdate): Promise<ImageRecord> {
    const now = nowTimestamp();
    await serialTransaction(this.db, async (tx) => {
      const qb = tx
        .createQueryBuilder()
        .update(ImageEntity)
        .set({
          ...this.toColumns(change.fields ?? {}),
          ...(change.uploadNode !== undefined
            ? { uploadNode: change.uploadNode }
            : {}),
          ...(change.uploadWorker !== undefined
            ? { uploadWorker: change.uploadWorker }
            : {}),
          updatedAt: now,
        })
        .where('id = :id', { id })
        .andWhere('deleted = :deleted', { deleted: false });
      if (change.fromState)
        qb.andWhere('status = :from', { from: change.fromState });
      const result = await qb.execute();
      if (!result.affected) {
        const current = await tx.findOneBy(ImageEntity, { id, deleted: false });
        if (!current) {
          throw new RegistryError(
            RegistryErrorCode.NotFound,
            `Image ${id} not found`,
          );
        }
        throw new RegistryError(
          RegistryErrorCode.Conflict,
          `cannot transition from ${current.status} to ${change.fields?.status ?? current.status} (wanted from_state=${change.fromState})`,
        );
      }
      if (change.properties) {
        await this.writeProperties(
          tx,
          id,
          change.properties,
          change.purgeProps ?? false,
          now,
        );
      }
      if (change.location) {
        // Rows by primary key: a DELETE of an empty range takes InnoDB gap locks
        // that deadlock other images' location inserts.
        const old = await tx.findBy(ImageLocationEntity, { imageId: id });
        if (old.length)
          await tx.delete(ImageLocationEntity, {
            id: In(old.map((l) => l.id)),
          });
        await this.writeLocation(tx, id, change.location, now);
      }
    });
    return this.mustGet(id);
  }

  /**
   * Soft-deletes the image and its children (Glance's image_destroy).
   * `status` may depend on whether the image has data: it is then decided
   * inside the transaction, from the locations read after the conditional
   * UPDATE took the image's row. The returned record carries those fresh
   * locations, so a caller removes the data of an upload that activated
   * while it was deciding (an activation that lands after finds the row
   * deleted, fails, and removes its own bytes): whichever wins, a deleted
   * image keeps no data.
   */
  async destroy(
    id: string,
    status: ImageStatus | ((hasData: boolean) => ImageStatus) = 'deleted',
  ): Promise<ImageRecord> {
    const now = nowTimestamp();
    const image = await this.mustGet(id);
    const decided = await serialTransaction(this.db, async (tx) => {
      // Conditional: of racing deletes, only one succeeds; it also waits for
      // (or blocks) an activation's UPDATE of the same row.
      const first = typeof status === 'function' ? 'deleted' : status;
      const result = await tx.update(
        ImageEntity,
        { id, deleted: false },
        { status: first, deleted: true, deletedAt: now, updatedAt: now },
      );
      if (!result.affected) {
        throw new RegistryError(
          RegistryErrorCode.NotFound,
          `Image ${id} not found`,
        );
      }
      // A locking read sees the latest committed rows under any isolation level.
      const locations = await tx.find(ImageLocationEntity, {
        where: { imageId: id, deleted: false },
        order: { id: 'ASC' },
        ...(this.db.options.type === 'better-sqlite3'
          ? {}
          : { lock: { mode: 'pessimistic_write' as const } }),
      });
      const final =
        typeof status === 'function' ? status(locations.length > 0) : status;
      if (final !== first) {
        await tx.update(ImageEntity, { id }, { status: final });
      }
      const soft = { deleted: true, deletedAt: now };
      await tx.update(
        ImagePropertyEntity,
        { imageId: id, deleted: false },
        soft,
      );
      await tx.update(
        ImageLocationEntity,
        { imageId: id, deleted: false },
        soft,
      );
      await tx.update(ImageMemberEntity, { imageId: id, deleted: false }, soft);
      return {
        status: final,
        locations: locations.map((l) => ({
          url: l.value,
          metadata: l.metaData ? JSON.parse(l.metaData) : {},
        })),
      };
    });
    return {
      ...image,
      status: decided.status,
      location: decided.locations[0]?.url ?? null,
      location_data: decided.locations,
      deleted: true,
      deleted_at: now,
      updated_at: now,
    };
  }

  /**
   * Serialises quota-checked creates of one owner until the transaction ends:
   * an advisory lock on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the
   * file's write lock. MariaDB/MySQL: a row lock on the owner's image rows.
   */
  private async lockOwner(tx: EntityManager, owner: string): Promise<void> {
    const kind = this.db.options.type;
    if (kind === 'postgres') {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
        `image-owner:${owner}`,
      ]);
    } else if (kind === 'mysql' || kind === 'mariadb') {
      await tx.query(
        'SELECT id FROM images WHERE owner = ? AND deleted = ? FOR UPDATE',
        [owner, false],
      );
    }
  }

  /** Non-deleted images owned by `owner` (IMAGE_COUNT_QUOTA). */
  async countOwnedImages(owner: string): Promise<number> {
    return this.db
      .getRepository(ImageEntity)
      .countBy({ owner, deleted: false });
  }

  /**
   * Bytes stored for `owner`, not counting `exceptId` (Glance's
   * _image_get_disk_usage_by_owner: killed and deleted images don't count).
   */
  async storageUsedBy(owner: string, exceptId?: string): Promise<number> {
    const qb = this.db
      .getRepository(ImageEntity)
      .createQueryBuilder('i')
      .select('COALESCE(SUM(i.size), 0)', 'total')
      .where('i.owner = :owner', { owner })
      .andWhere('i.deleted = :deleted', { deleted: false })
      .andWhere('i.status NOT IN (:...gone)', {
        gone: ['killed', 'pending_delete', 'deleted'],
      });
    if (exceptId) qb.andWhere('i.id <> :exceptId', { exceptId });
    const row = await qb.getRawOne<{ total: string | number }>();
    return Number(row?.total ?? 0);
  }

  /** pending_delete images deleted before `before`, with their (soft-deleted) locations. */
  async pendingDeletes(
    before: string,
    limit = 100,
  ): Promise<{ id: string; locations: string[] }[]> {
    const images = await this.db.getRepository(ImageEntity).find({
      where: { status: 'pending_delete' },
      order: { deletedAt: 'ASC' },
      take: limit,
    });
    const due = images.filter(
      (i) => i.deletedAt !== null && i.deletedAt <= before,
    );
    if (due.length === 0) return [];
    const locs = await this.db
      .getRepository(ImageLocationEntity)
      .findBy({ imageId: In(due.map((i) => i.id)) });
    return due.map((i) => ({
      id: i.id,
      locations: locs.filter((l) => l.imageId === i.id).map((l) => l.value),
    }));
  }

  /** pending_delete → deleted once the scrubber removed the data. */
  async markScrubbed(id: string): Promise<void> {
    await this.db
      .getRepository(ImageEntity)
      .update(
        { id, status: 'pending_delete' },
        { status: 'deleted', updatedAt: nowTimestamp() },
      );
  }

  /** Images left `saving` by `node` (it restarted), or by nodes whose heartbeat is older than `staleBefore`. */
  async orphanedUploads(
    node: string,
    staleBefore: string | null,
  ): Promise<string[]> {
    const qb = this.db
      .getRepository(ImageEntity)
      .createQueryBuilder('i')
      .select('i.id', 'id')
      .where('i.status = :saving', { saving: 'saving' });
    if (staleBefore === null) {
      qb.andWhere('i.upload_node = :node', { node });
    } else {
      qb.andWhere(
        new Brackets((w) => {
          w.where('i.upload_node IS NULL').orWhere(
            'NOT EXISTS (SELECT 1 FROM api_nodes n WHERE n.node_id = i.upload_node AND n.heartbeat_at >= :stale)',
            { stale: staleBefore },
          );
        }),
      );
    }
    const rows = await qb.getRawMany<{ id: string }>();
    return rows.map((r) => r.id);
  }

  /** Images left `saving` by one worker process of `node` (it died). */
  async workerUploads(node: string, worker: string): Promise<string[]> {
    const rows = await this.db.getRepository(ImageEntity).find({
      select: { id: true },
      where: { status: 'saving', uploadNode: node, uploadWorker: worker },
    });
    return rows.map((r) => r.id);
  }

  /** Records that `node` is alive now (insert or update its heartbeat). */
  async heartbeat(node: string, startedAt?: string): Promise<void> {
    const now = nowTimestamp();
    const repo = this.db.getRepository(ApiNodeEntity);
    const updated = await repo.update(
      { nodeId: node },
      { heartbeatAt: now, ...(startedAt ? { startedAt } : {}) },
    );
    if (!updated.affected) {
      await repo
        .insert({ nodeId: node, startedAt: startedAt ?? now, heartbeatAt: now })
        .catch(async () => {
          await repo.update({ nodeId: node }, { heartbeatAt: now });
        });
    }
  }

  private async mustGet(id: string): Promise<ImageRecord> {
    const image = await this.get(id, true);
    if (!image)
      throw new RegistryError(
        RegistryErrorCode.NotFound,
        `Image ${id} not found`,
      );
    return image;
  }

  /**
   * The property filters that match fewer than SPARSE_PROPERTY_ROWS images,
   * by one bounded index count: planners cannot tell (SQLite cannot estimate
   * an IN subquery; PostgreSQL turned a dense EXISTS into a hash semi-join
   * over every match, 150 ms at 100,000 images).
   */
  private async sparseProperties(query: ImageListQuery): Promise<Set<string>> {
    const sparse = new Set<string>();
    for (const [name, value] of Object.entries(
      query.filters.properties ?? {},
    )) {
      const [row] = await this.reader.all<{ n: number }>(
        `SELECT COUNT(*) AS n FROM (SELECT 1 FROM image_properties p WHERE p.name = ? AND p.value = ? AND p.deleted = ? LIMIT ${SPARSE_PROPERTY_ROWS}) matched`,
        [name, value, false],
      );
      if (Number(row.n) < SPARSE_PROPERTY_ROWS) sparse.add(name);
    }
    return sparse;
  }

  /**
   * SQLite, a filter on one column and a sort on another: when the filters
   * match at least SPARSE_FILTER_ROWS images (one bounded count), walk the
   * sort key's index (a page then reads about limit x images / matches rows)
   * rather than sorting every match, which SQLite's estimates often prefer
   * once visibility is in the WHERE. Fewer matches: the planner's choice (it
   * sorts those few). Not with changes-since, whose rows span `deleted`.
   */
  private async sortIndexHint(
    query: ImageListQuery,
    where: string[],
    params: unknown[],
  ): Promise<string> {
    const f = query.filters;
    if (this.reader.kind !== 'sqlite') return '';
    if (f.changes_since !== undefined) {
      // Its walk spans deleted rows: only the (created_at, id) index serves it, in the default order.
      if (query.sortKey !== 'created_at') return '';
      return (await this.matchesAtLeast(where, params, SPARSE_FILTER_ROWS))
        ? ' INDEXED BY ix_images_created_at_id'
        : '';
    }
    const others = FILTER_SORT_KEYS.filter(
      ([filter, key]) => f[filter] !== undefined && key !== query.sortKey,
    );
    // Equality filters walk their own (deleted, column, created_at, id) index
    // in the default order; property filters are decided by sparseProperties.
    if (
      others.length === 0 ||
      (query.sortKey === 'created_at' &&
        others.every(([k]) => !k.startsWith('size')))
    )
      return '';
    return (await this.matchesAtLeast(where, params, SPARSE_FILTER_ROWS))
      ? ` INDEXED BY ${SORT_INDEXES[query.sortKey]}`
      : '';
  }

  /**
   * MariaDB/MySQL: the index a page walks, forced. Asked for a descending
   * page, MariaDB's planner trades the range it found on the sort index
   * (`k < marker`) for a `ref` on the index's `deleted` prefix and reads
   * backwards from the end of the table, so a marker page deep in a listing
   * read every row before it (100-370 ms at 100,000 images). With the index
   * forced it keeps the range. Which index: the sort key's; with the default
   * sort and an equality filter, that filter's (deleted, column, created_at,
   * id) index; with a filter on another column matching fewer than
   * SPARSE_FILTER_ROWS images, the filter's index (its few matches sorted).
   * A sparse property filter or changes-since: the planner's choice.
   */
  private async mysqlIndexHint(
    query: ImageListQuery,
    sparse: Set<string>,
  ): Promise<string> {
    const f = query.filters;
    if (f.changes_since !== undefined || sparse.size > 0) return '';
    const force = (index: string) => ` FORCE INDEX (${index})`;
    const others = FILTER_SORT_KEYS.filter(
      ([filter, key]) => f[filter] !== undefined && key !== query.sortKey,
    );
    if (others.length === 0) return force(SORT_INDEXES[query.sortKey]);
    const equality = others.find(([filter]) => !filter.startsWith('size'));
    if (query.sortKey === 'created_at' && equality)
      return force(FILTER_INDEXES[equality[0]]);
    const [filter] = others[0];
    return force(
      (await this.filterMatchesAtLeast(query, filter, SPARSE_FILTER_ROWS))
        ? SORT_INDEXES[query.sortKey]
        : FILTER_INDEXES[filter],
    );
  }

  /**
   * Whether at least `n` live images pass one indexed filter, counted in its
   * (deleted, column, ...) index alone: no row is read (on MariaDB a count
   * that also checked the status read 1,000 rows, 2-20 ms).
   */
  private async filterMatchesAtLeast(
    query: ImageListQuery,
    filter: IndexedFilter,
    n: number,
  ): Promise<boolean> {
    const f = query.filters;
    const terms = ['i.deleted = ?'];
    const params: unknown[] = [false];
    if (filter === 'size_min' || filter === 'size_max') {
      for (const [bound, op] of [
        ['size_min', '>='],
        ['size_max', '<='],
      ] as const) {
        if (f[bound] === undefined) continue;
        terms.push(`i.size ${op} ?`);
        params.push(f[bound]);
      }
    } else {
      terms.push(`i.${filter} = ?`);
      params.push(f[filter]);
    }
    const [row] = await this.reader.all<{ n: number }>(
      `SELECT COUNT(*) AS n FROM (SELECT 1 FROM images i FORCE INDEX (${FILTER_INDEXES[filter]}) WHERE ${terms.join(' AND ')} LIMIT ${n}) matched`,
      params,
    );
    return Number(row.n) >= n;
  }

  /** Whether at least `n` images pass the filters: one count that stops at n. */
  private async matchesAtLeast(
    where: string[],
    params: unknown[],
    n: number,
  ): Promise<boolean> {
    const [row] = await this.reader.all<{ n: number }>(
      `SELECT COUNT(*) AS n FROM (SELECT 1 FROM images i WHERE ${where.join(' AND ')} LIMIT ${n}) matched`,
      params,
    );
    return Number(row.n) >= n;
  }

  private filterClauses(
    query: ImageListQuery,
    where: string[],
    params: unknown[],
    sparse: Set<string>,
  ): void {
    const f = query.filters;
    const equal: [string, unknown][] = [
      ['name', f.name],
      ['status', f.status],
      ['container_format', f.container_format],
      ['disk_format', f.disk_format],
      ['min_ram', f.min_ram],
      ['min_disk', f.min_disk],
      ['protected', f.protected],
      ['is_public', f.is_public],
    ];
    for (const [column, value] of equal) {
      if (value === undefined) continue;
      where.push(`i.${column} = ?`);
      params.push(value);
    }
    if (f.size_min !== undefined) {
      where.push('i.size >= ?');
      params.push(f.size_min);
    }
    if (f.size_max !== undefined) {
      where.push('i.size <= ?');
      params.push(f.size_max);
    }
    if (f.changes_since !== undefined) {
      where.push('i.updated_at > ?');
      params.push(f.changes_since);
    }
    if (f.deleted !== undefined || f.changes_since === undefined) {
      where.push('i.deleted = ?');
      params.push(f.deleted ?? false);
    }
    // Killed images stay out of ordinary listings, as in Glance.
    if (
      f.deleted === false ||
      (f.deleted === undefined && f.changes_since === undefined)
    ) {
      where.push("i.status <> 'killed'");
    }
    for (const [name, value] of Object.entries(f.properties ?? {})) {
      // Few matches: start from the (name, value) index (IN); many: walk the
      // sort order and probe that index per row (EXISTS). See sparseProperties.
      // SQLite otherwise may build an automatic index per statement.
      const from = `image_properties p${this.reader.kind === 'sqlite' ? ' INDEXED BY ix_image_properties_name_value' : ''}`;
      where.push(
        sparse.has(name)
          ? `i.id IN (SELECT p.image_id FROM ${from} WHERE p.name = ? AND p.value = ? AND p.deleted = ?)`
          : this.reader.kind === 'sqlite'
            ? `EXISTS (SELECT 1 FROM ${from} WHERE p.image_id = i.id AND p.name = ? AND p.value = ? AND p.deleted = ?)`
            : // A scalar subquery, not EXISTS: PostgreSQL made EXISTS a hash semi-join over every match.
              `(SELECT 1 FROM ${from} WHERE p.image_id = i.id AND p.name = ? AND p.value = ? AND p.deleted = ? LIMIT 1) IS NOT NULL`,
      );
      params.push(name, value, false);
    }
  }

  /** Public, owned, or shared with the caller's tenant. */
  private visibilityClause(
    ctx: RequestContext,
    where: string[],
    params: unknown[],
  ): void {
    if (ctx.owner === null) {
      where.push('i.is_public = ?');
      params.push(true);
      return;
    }
    // PostgreSQL answers an EXISTS inside OR with a hashed subplan over every
    // image shared with the tenant (cost grows with them); a LIMIT 1 scalar
    // subquery is probed per row through ix_image_members_image_id_member.
    const shared =
      this.reader.kind === 'sqlite'
        ? 'EXISTS (SELECT 1 FROM image_members m WHERE m.image_id = i.id AND m.member = ? AND m.deleted = ?)'
        : '(SELECT 1 FROM image_members m WHERE m.image_id = i.id AND m.member = ? AND m.deleted = ? LIMIT 1) IS NOT NULL';
    where.push(`(i.is_public = ? OR i.owner = ? OR ${shared})`);
    params.push(true, ctx.owner, ctx.owner, false);
  }

  private toColumns(fields: ImageFields): Partial<ImageEntity> {
    const columns: Record<string, unknown> = {};
    for (const [key, column] of Object.entries(FIELD_COLUMNS)) {
      const value = fields[key as keyof ImageFields];
      if (value !== undefined) columns[column] = value;
    }
    return columns as Partial<ImageEntity>;
  }

  private async writeProperties(
    tx: EntityManager,
    imageId: string,
    properties: Record<string, string | null>,
    purge: boolean,
    now: string,
  ): Promise<void> {
    const names = Object.keys(properties);
    const existing = await tx.findBy(ImagePropertyEntity, { imageId });
    const byName = new Map(existing.map((p) => [p.name, p]));
    for (const name of names) {
      const row = byName.get(name);
      if (row) {
        if (row.value !== properties[name] || row.deleted) {
          await tx.update(
            ImagePropertyEntity,
            { id: row.id },
            {
              value: properties[name],
              updatedAt: now,
              deleted: false,
              deletedAt: null,
            },
          );
        }
      } else {
        await tx.insert(ImagePropertyEntity, {
          imageId,
          name,
          value: properties[name],
          createdAt: now,
          updatedAt: now,
          deleted: false,
        });
      }
    }
    if (purge) {
      const stale = existing
        .filter((p) => !(p.name in properties))
        .map((p) => p.id);
      if (stale.length) await tx.delete(ImagePropertyEntity, { id: In(stale) });
    }
  }

  private async writeLocation(
    tx: EntityManager,
    imageId: string,
    location: LocationData,
    now: string,
  ): Promise<void> {
    await tx.insert(ImageLocationEntity, {
      imageId,
      value: location.url,
      metaData: JSON.stringify(location.metadata ?? {}),
      createdAt: now,
      updatedAt: now,
      deleted: false,
    });
  }
}

function toRecord(row: ImageRow): ImageRecord {
  const [
    id,
    name,
    size,
    virtualSize,
    diskFormat,
    containerFormat,
    status,
    isPublic,
    checksum,
    osHashAlgo,
    osHashValue,
    minDisk,
    minRam,
    owner,
    isProtected,
    createdAt,
    updatedAt,
    deletedAt,
    deleted,
    properties,
  ] = row;
  return {
    id,
    name,
    size: toNumber(size),
    virtual_size: toNumber(virtualSize),
    disk_format: diskFormat,
    container_format: containerFormat,
    status: status as ImageStatus,
    is_public: Boolean(isPublic),
    checksum,
    os_hash_algo: osHashAlgo,
    os_hash_value: osHashValue,
    min_disk: Number(minDisk),
    min_ram: Number(minRam),
    owner,
    protected: Boolean(isProtected),
    created_at: createdAt,
    updated_at: updatedAt,
    deleted_at: deletedAt,
    deleted: Boolean(deleted),
    properties: parseProperties(properties),
  };
}
