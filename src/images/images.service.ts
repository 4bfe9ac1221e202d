import { Injectable, Logger } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { ImageCache } from '../cache/image-cache.service.js';
import { storeOpener } from '../cache/store-opener.js';
import { ApiError } from '../common/api-error.js';
import type { RequestContext } from '../common/request-context.js';
import { AppConfig } from '../config/app-config.js';
import { IMAGE_EVENTS } from '../notifications/image-notification.js';
import { NotifierService } from '../notifications/notifier.service.js';
import { PolicyService } from '../policy/policy.service.js';
import { ImageRegistry } from '../registry/image.registry.js';
import type { ImageListQuery } from '../registry/image-list-query.js';
import type { ImageFields, ImageRecord } from '../registry/image-record.js';
import {
  RegistryError,
  RegistryErrorCode,
} from '../registry/registry.error.js';
import type { ImageStore } from '../stores/image-store.interface.js';
import { StoreRegistry } from '../stores/store.registry.js';
import { PropertyProtectionService } from '../policy/property-protection.service.js';
import { ExternalSourceService } from './external-source.service.js';
import { QuotaService } from './quota.service.js';
import { StoreError, StoreErrorCode } from '../stores/store.error.js';
import type { ImageMeta } from './image-meta.js';
import { validateImageMeta } from './image-meta-validation.js';
import type { ImageData } from './download/image-downloader.js';
import { ImageUploader } from './upload/image-uploader.js';
import { UploadTracker } from './upload/upload-tracker.js';

/** Fields shown by GET /v1/images (Glance's DISPLAY_FIELDS_IN_INDEX). */
const INDEX_FIELDS = [
  'id',
  'name',
  'size',
  'disk_format',
  'container_format',
  'checksum',
] as const;

/** Once active, only admins may change these (Glance's ACTIVE_IMMUTABLE). */
const ACTIVE_IMMUTABLE = [
  'size',
  'checksum',
  'os_hash_algo',
  'os_hash_value',
] as const;

/** Keys clients may never set directly: the service owns them (OSSA 2015-019). */
const SERVER_OWNED = [
  'status',
  'created_at',
  'updated_at',
  'deleted_at',
  'deleted',
  'uri',
  'copy_from',
] as const;

/** Where the bytes of a create or update come from (the seed's scenarios 1 and 4). */
export interface ImageBody {
  /** The request stream when the request has a body, else null. */
  stream: Readable | null;
  contentType: string | undefined;
  /** Content-Length when sent. */
  contentLength: number | null;
}

export type ImageIndexEntry = Pick<ImageRecord, (typeof INDEX_FIELDS)[number]>;

/** Glance v1 image rules: the seed controller's logic, behind the HTTP layer. */
@Injectable()
export class ImagesService {
  private readonly logger = new Logger('Images');

  constructor(
    private readonly registry: ImageRegistry,
    private readonly stores: StoreRegistry,
    private readonly policy: PolicyService,
    private readonly notifier: NotifierService,
    private readonly uploader: ImageUploader,
    private readonly tracker: UploadTracker,
    private readonly protections: PropertyProtectionService,
    private readonly quotas: QuotaService,
    private readonly sources: ExternalSourceService,
    private readonly config: AppConfig,
    private readonly cache: ImageCache,
  ) {}

  /** The image as this caller may see it: properties it may not read are left out. */
  forCaller(ctx: RequestContext, image: ImageRecord): ImageRecord {
    if (!this.protections.enabled) return image;
    return {
      ...image,
      properties: this.protections.readable(ctx, image.properties),
    };
  }

  async index(
    ctx: RequestContext,
    query: ImageListQuery,
  ): Promise<ImageIndexEntry[]> {
    const images = await this.list(ctx, query);
    return images.map((image) => {
      const entry: Record<string, unknown> = {};
      for (const f of INDEX_FIELDS) entry[f] = image[f];
      return entry as ImageIndexEntry;
    });
  }

  async detail(
    ctx: RequestContext,
    query: ImageListQuery,
  ): Promise<ImageRecord[]> {
    return (await this.list(ctx, query)).map((image) =>
      this.forCaller(ctx, image),
    );
  }

  /**
   * An image the caller may see, or 404 (existence of others' images never leaks).
   * `withLocations: false` skips the locations query (HEAD never shows them).
   */
  async getVisible(
    ctx: RequestContext,
    id: string,
    withLocations = true,
  ): Promise<ImageRecord> {
    const image = validId(id)
      ? await this.registry.get(id, ctx.isAdmin, withLocations)
      : null;
    if (!image || !(await this.registry.isVisible(ctx, image))) {
      throw ApiError.notFound(`Image with identifier ${id} not found`);
    }
    return image;
  }

  async getActive(ctx: RequestContext, id: string): Promise<ImageRecord> {
    let image: ImageRecord;
    try {
      image = await this.getVisible(ctx, id);
    } catch (err) {
      if (this.cache.isCached(id)) await this.evictIfDeleted(id);
      throw err;
    }
    if (image.status !== 'active') {
      // Deactivated or deleted through any node: this node's copy must go.
      await this.cache.evict(id);
      throw ApiError.notFound(`Image ${id} is not active`);
    }
    return image;
  }

  /**
   * A caller who may not see an image never evicts it; but a deleted image
   * is no one's to see, so its stale cache entry goes whoever asked (the
   * answer is the same 404 either way, nothing leaks).
   */
  private async evictIfDeleted(id: string): Promise<void> {
    const record = await this.registry.get(id, true);
    if (!record || record.deleted || record.status === 'deleted' || record.status === 'pending_delete') {
      await this.cache.evict(id);
    }
  }

  /** The image's bytes; `size` is the recorded size the transfer is checked against. */
  async openData(image: ImageRecord): Promise<ImageData> {
    const size = image.size ?? 0;
    if (size === 0 || !image.location)
      return { size: 0, reader: null, stream: null };
    try {
      if (this.cache.enabled) {
        const cached = await this.cache.open(image, storeOpener(this.stores, image));
        if (cached) return cached;
      }
      const store = this.stores.forLocation(image.location);
      if (store.openReader) {
        const reader = await store.openReader(image.location);
        this.checkStoredSize(image, reader.size);
        return { size, reader, stream: null };
      }
      const data = await store.get(image.location);
      this.checkStoredSize(image, data.size);
      return { size, reader: null, stream: data.stream };
    } catch (err) {
      if (err instanceof StoreError && err.code === StoreErrorCode.NotFound) {
        throw ApiError.notFound(
          `Image data for ${image.id} not found in its store`,
        );
      }
      throw err;
    }
  }

  private checkStoredSize(image: ImageRecord, stored: number | null): void {
    if (stored !== null && stored !== image.size) {
      this.logger.error(
        `Store reports ${stored} bytes for image ${image.id}, registry recorded ${image.size}`,
      );
    }
  }

  async create(
    ctx: RequestContext,
    meta: ImageMeta,
    body: ImageBody,
    copyFrom?: string,
  ): Promise<ImageRecord> {
    const location = meta.location ?? undefined;
    this.enforceSourcePolicies(ctx, meta, body, copyFrom);
    this.protections.enforceCreate(ctx, Object.keys(meta.properties));
    this.quotas.enforcePropertyQuota(meta.properties);
    await this.quotas.enforceImageCount(ctx);
    this.checkDeclaredSize(meta, body);
    checkSuppliedHash(meta);
    this.rejectMultipleSources(location, copyFrom, body);
    this.checkRequestedStore(meta);
    // Glance's registry takes only canonical UUIDs (others could never be list markers).
    if (meta.id && !isCanonicalUuid(meta.id)) {
      throw ApiError.badRequest('Invalid image id format');
    }
    if (location || copyFrom)
      await this.sources.validate((location ?? copyFrom)!);

    // Probed before anything is stored: an unreachable location creates nothing.
    const remoteSize = location
      ? await this.sources.sizeOf(location)
      : undefined;
    let size = meta.size ?? 0;
    if (location && !size) size = remoteSize ?? 0;
    let image: ImageRecord;
    const owner =
      ctx.isAdmin && meta.owner !== undefined ? meta.owner : ctx.owner;
    try {
      image = await this.registry.create({
        ...this.clientFields(meta),
        id: meta.id ?? undefined,
        owner,
        ownedLimit: this.quotas.ownedLimit(ctx, owner),
        size,
        // Size 0 with nothing to upload is a complete (empty) image, as in Glance.
        status:
          meta.size === 0 && !body.stream && !copyFrom && !location
            ? 'active'
            : 'queued',
        properties: meta.properties,
      });
    } catch (err) {
      if (
        err instanceof RegistryError &&
        err.code === RegistryErrorCode.Duplicate
      ) {
        throw ApiError.conflict(
          `An image with identifier ${meta.id} already exists`,
        );
      }
      if (
        err instanceof RegistryError &&
        err.code === RegistryErrorCode.QuotaExceeded
      ) {
        throw this.quotas.imageCountError(Number(err.message));
      }
      throw err;
    }
    this.notifier.info(IMAGE_EVENTS.create, image);
    return this.handleSource(ctx, image, meta, body, copyFrom, remoteSize);
  }

  async update(
    ctx: RequestContext,
    id: string,
    meta: ImageMeta,
    body: ImageBody,
    purgeHeader: string | undefined,
    copyFrom?: string,
  ): Promise<ImageRecord> {
    const location = meta.location ?? undefined;
    this.enforceSourcePolicies(ctx, meta, body, copyFrom);
    this.checkDeclaredSize(meta, body);
    checkSuppliedHash(meta);
    const orig = await this.getVisible(ctx, id);
    if (orig.status === 'deleted' || orig.deleted) {
      throw ApiError.forbidden('Forbidden to update deleted image.');
    }
    this.assertMutable(ctx, orig);
    if (!ctx.isAdmin && orig.status === 'active') {
      for (const key of ACTIVE_IMMUTABLE) {
        const value = meta[key];
        if (value !== undefined && value !== null && value !== orig[key]) {
          throw ApiError.forbidden(
            `Forbidden to modify '${key}' of active image.`,
          );
        }
      }
    }
    if (body.stream && orig.status !== 'queued') {
      throw ApiError.conflict('Cannot upload to an unqueued image');
    }
    if ((location || copyFrom) && orig.status !== 'queued') {
      throw ApiError.badRequest(
        'Attempted to update Location field for an image not in queued status.',
      );
    }
    this.rejectMultipleSources(location, copyFrom, body);
    this.checkRequestedStore(meta);
    if (location || copyFrom)
      await this.sources.validate((location ?? copyFrom)!);
    const activating =
      body.stream !== null || location !== undefined || copyFrom !== undefined;
    if (activating) this.validateForActivation(meta, orig);

    // Properties are replaced unless the client says not to, or is uploading data.
    const purgeProps =
      body.stream === null &&
      (purgeHeader === undefined || boolish(purgeHeader));
    const origKeys = new Set(Object.keys(orig.properties));
    const newKeys = Object.keys(meta.properties);
    this.protections.enforceUpdate(
      ctx,
      newKeys.filter((k) => origKeys.has(k)),
      meta.properties,
      orig.properties,
    );
    this.protections.enforceCreate(
      ctx,
      newKeys.filter((k) => !origKeys.has(k)),
    );
    if (purgeProps) {
      this.protections.enforceDelete(
        ctx,
        [...origKeys].filter((k) => !(k in meta.properties)),
        meta.properties,
        orig.properties,
      );
    }
    this.quotas.enforcePropertyQuota(
      meta.properties,
      orig.properties,
      purgeProps,
    );

    const fields = this.clientFields(meta);
    if (!ctx.isAdmin) delete fields.owner;
    // Probed before the update is stored: an unreachable location changes nothing.
    const remoteSize = location
      ? await this.sources.sizeOf(location)
      : undefined;
    if (location && !meta.size) fields.size = remoteSize;
    let image: ImageRecord;
    try {
      image = await this.registry.update(id, {
        fields,
        properties: meta.properties,
        purgeProps,
      });
    } catch (err) {
      throw this.registryError(err, id);
    }
    if (activating)
      return this.handleSource(ctx, image, meta, body, copyFrom, remoteSize);
    this.notifier.info(IMAGE_EVENTS.update, image);
    return image;
  }

  /** The seed's _handle_source: upload the body, start a copy, or activate a location. */
  private async handleSource(
    ctx: RequestContext,
    image: ImageRecord,
    meta: ImageMeta,
    body: ImageBody,
    copyFrom: string | undefined,
    remoteSize?: number,
  ): Promise<ImageRecord> {
    const storeName = meta.store ?? this.config.DEFAULT_STORE;
    if (body.stream) {
      this.validateForActivation(meta, image);
      if (!isOctetStream(body.contentType)) {
        await this.killQueued(image.id);
        throw ApiError.badRequest(
          'Content-Type must be application/octet-stream',
        );
      }
      const store = await this.writableStore(storeName, image.id);
      const limit = await this.uploadLimit(image).catch(
        async (err: unknown) => {
          // As in Glance, an upload refused by the quota kills the image: a queued one would hold quota.
          await this.killQueued(image.id);
          throw err;
        },
      );
      return this.uploader.upload({
        image,
        source: body.stream,
        store,
        ...limit,
        fromClient: true,
      });
    }
    if (copyFrom) {
      const store = await this.writableStore(storeName, image.id);
      this.logger.log(
        `Triggering asynchronous copy from external source for image ${image.id}`,
      );
      void this.copyFromSource(image, copyFrom, store);
      return image;
    }
    if (meta.location) {
      this.validateForActivation(meta, image);
      // The remote size was taken before the image was stored: no second request.
      const remote = meta.size
        ? (remoteSize ?? (await this.sources.sizeOf(meta.location)))
        : 0;
      if (remote && remote !== meta.size) {
        throw ApiError.conflict(
          `Provided image size must match the stored image size. (provided size: ${meta.size}, stored size: ${remote})`,
        );
      }
      const active = await this.registry
        .update(image.id, {
          fields: { status: 'active' },
          location: { url: meta.location, metadata: {} },
          fromState: 'queued',
        })
        .catch((err: unknown) => {
          throw this.registryError(err, image.id);
        });
      this.notifier.info(IMAGE_EVENTS.activate, active);
      this.notifier.info(IMAGE_EVENTS.update, active);
      return active;
    }
    return image;
  }

  /** Scenario 2: the bytes are copied in the background; failures leave the image killed. */
  private async copyFromSource(
    image: ImageRecord,
    url: string,
    store: ImageStore,
  ): Promise<void> {
    try {
      const remote = await this.sources.open(url);
      const limit = await this.uploadLimit(image);
      await this.uploader.upload({
        image: { ...image, size: image.size || remote.size || 0 },
        source: remote.stream,
        store,
        ...limit,
        fromClient: false,
      });
    } catch (err) {
      await this.killQueued(image.id);
      this.notifier.error(
        IMAGE_EVENTS.upload,
        `Copy from external source failed: ${(err as Error).message}`,
      );
      this.logger.warn(
        `Copy from external source failed for image ${image.id}: ${(err as Error).message}`,
      );
    }
  }

  /** The byte limit of an upload: the size cap, or less when the owner's storage quota is nearer. */
  private async uploadLimit(
    image: ImageRecord,
  ): Promise<{ maxBytes: number; limitReason: 'size_cap' | 'quota' }> {
    const remaining = await this.quotas.remainingStorage(image.owner, image.id);
    if (remaining !== null && image.size && image.size > remaining) {
      throw this.quotas.storageQuotaError(remaining);
    }
    if (remaining !== null && remaining < this.config.IMAGE_SIZE_CAP) {
      return { maxBytes: remaining, limitReason: 'quota' };
    }
    return { maxBytes: this.config.IMAGE_SIZE_CAP, limitReason: 'size_cap' };
  }

  /** A read-only store (http) cannot take the upload the image was reserved for: kill it, as Glance does. */
  private async writableStore(
    name: string,
    imageId: string,
  ): Promise<ImageStore> {
    try {
      return this.stores.writable(name);
    } catch (err) {
      await this.killQueued(imageId);
      throw ApiError.badRequest((err as Error).message);
    }
  }

  private enforceSourcePolicies(
    ctx: RequestContext,
    meta: ImageMeta,
    body: ImageBody,
    copyFrom?: string,
  ): void {
    if (meta.is_public) this.policy.enforce(ctx, 'publicize_image');
    if (copyFrom) this.policy.enforce(ctx, 'copy_from');
    if (body.stream || copyFrom) this.policy.enforce(ctx, 'upload_image');
    if (meta.location) this.policy.enforce(ctx, 'set_image_location');
  }

  private rejectMultipleSources(
    location: string | undefined,
    copyFrom: string | undefined,
    body: ImageBody,
  ): void {
    if ([location, copyFrom, body.stream].filter(Boolean).length >= 2) {
      throw ApiError.badRequest(
        "It's invalid to provide multiple image sources.",
      );
    }
  }

  /** Glance's _validate_image_for_activation: data needs valid name and formats (request over stored). */
  private validateForActivation(meta: ImageMeta, image: ImageRecord): void {
    validateImageMeta(
      {
        name: meta.name !== undefined ? meta.name : image.name,
        disk_format:
          meta.disk_format !== undefined ? meta.disk_format : image.disk_format,
        container_format:
          meta.container_format !== undefined
            ? meta.container_format
            : image.container_format,
      },
      this.config,
    );
  }

  async delete(ctx: RequestContext, id: string): Promise<ImageRecord> {
    const image = await this.getVisible(ctx, id);
    this.assertMutable(ctx, image);
    if (image.protected) throw ApiError.forbidden('Image is protected');
    if (image.status === 'pending_delete') {
      throw ApiError.forbidden(`Forbidden to delete a ${image.status} image.`);
    }
    if (image.status === 'deleted' || image.deleted) {
      throw ApiError.notFound(`Image ${id} not found.`);
    }
    // A running upload is stopped first: it removes its own partial bytes.
    this.tracker.abort(id, 'image deleted');
    // Whether there is data, and where, is read inside the registry's
    // conditional delete, not from `image`: an upload (on any node) may have
    // activated the image since. See ARCHITECTURE "delete vs activation".
    const deleted = await this.registry
      .destroy(id, (hasData) =>
        this.config.DELAYED_DELETE && hasData ? 'pending_delete' : 'deleted',
      )
      .catch((err: unknown) => {
        throw this.registryError(err, id);
      });
    if (deleted.status === 'deleted') {
      for (const { url } of deleted.location_data ?? []) {
        try {
          await this.stores.forLocation(url).delete(url);
        } catch (err) {
          this.logger.error(
            `Failed to delete data of image ${id}: ${(err as Error).message}`,
          );
        }
      }
    }
    await this.cache.evict(id);
    this.notifier.info(IMAGE_EVENTS.delete, deleted);
    return deleted;
  }

  private async list(
    ctx: RequestContext,
    query: ImageListQuery,
  ): Promise<ImageRecord[]> {
    try {
      return await this.registry.list(ctx, query);
    } catch (err) {
      if (
        err instanceof RegistryError &&
        err.code === RegistryErrorCode.InvalidMarker
      ) {
        throw ApiError.badRequest(err.message);
      }
      throw err;
    }
  }

  /** x-image-meta-store must name a configured store (Glance's _reserve). */
  private checkRequestedStore(meta: ImageMeta): void {
    if (meta.store && !this.stores.has(meta.store)) {
      throw ApiError.badRequest(`Required store ${meta.store} is invalid`);
    }
  }

  /** Glance's deserializer: a declared size over the cap is refused before any byte is read. */
  private checkDeclaredSize(meta: ImageMeta, body: ImageBody): void {
    // A Content-Length of 0 (a reserve) must not hide the declared x-image-meta-size.
    const declared = body.contentLength || (meta.size ?? null);
    if (declared !== null && declared > this.config.IMAGE_SIZE_CAP) {
      throw ApiError.badRequest(
        `Denying attempt to upload image larger than ${this.config.IMAGE_SIZE_CAP} bytes.`,
      );
    }
  }

  private assertMutable(ctx: RequestContext, image: ImageRecord): void {
    if (ctx.isAdmin) return;
    if (
      image.owner === null ||
      ctx.owner === null ||
      image.owner !== ctx.owner
    ) {
      // Visible but not ours: Glance answers 403 for public images, 404 otherwise.
      if (image.is_public)
        throw ApiError.forbidden('You do not own this image');
      throw ApiError.notFound(`Image with identifier ${image.id} not found`);
    }
  }

  private clientFields(meta: ImageMeta): ImageFields {
    const fields: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(meta)) {
      if (
        key === 'properties' ||
        key === 'id' ||
        key === 'location' ||
        key === 'store'
      )
        continue;
      if ((SERVER_OWNED as readonly string[]).includes(key)) continue;
      fields[key] = value;
    }
    return fields as ImageFields;
  }

  private async killQueued(id: string): Promise<void> {
    try {
      await this.registry.update(id, {
        fields: { status: 'killed' },
        fromState: 'queued',
      });
    } catch {
      // Already moved on; nothing to kill.
    }
  }

  private registryError(err: unknown, id: string): Error {
    if (err instanceof RegistryError) {
      if (err.code === RegistryErrorCode.NotFound)
        return ApiError.notFound(`Image with identifier ${id} not found`);
      if (err.code === RegistryErrorCode.Conflict)
        return ApiError.conflict('Image operation conflicts');
    }
    return err as Error;
  }
}

/**
 * os_hash_algo / os_hash_value as input (glance-replicator copies them): the
 * service computes sha512 only, so that is the one algorithm accepted; the value
 * is checked against the uploaded data as checksum is.
 */
function checkSuppliedHash(meta: ImageMeta): void {
  const algo = meta.os_hash_algo;
  if (algo !== undefined && algo !== null && algo !== 'sha512') {
    throw ApiError.badRequest(
      `Unsupported os_hash_algo '${algo}': this service computes sha512.`,
    );
  }
  const value = meta.os_hash_value;
  if (value === undefined || value === null) return;
  if (!/^[0-9a-fA-F]{128}$/.test(value)) {
    throw ApiError.badRequest(
      'Invalid os_hash_value: expected 128 hexadecimal digits (sha512).',
    );
  }
  meta.os_hash_value = value.toLowerCase();
  meta.os_hash_algo = 'sha512';
}

function isOctetStream(contentType: string | undefined): boolean {
  return (
    (contentType ?? '').split(';')[0].trim().toLowerCase() ===
    'application/octet-stream'
  );
}

function boolish(value: string): boolean {
  return ['1', 't', 'true', 'on', 'y', 'yes'].includes(
    value.trim().toLowerCase(),
  );
}

/** Ids are checked before any lookup: 36 chars max, no path or control characters. */
function validId(id: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,35}$/.test(id);
}

/** Glance's is_uuid_like: str(uuid.UUID(id)) == id, lowercase 8-4-4-4-12 hex. */
function isCanonicalUuid(id: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(
    id,
  );
}
