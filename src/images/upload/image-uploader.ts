import { Injectable, Logger } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { workerIdentity } from '../../cluster/process-role.js';
import { ApiError, ApiErrorCode } from '../../common/api-error.js';
import { AppConfig } from '../../config/app-config.js';
import { TransferMetrics } from '../../metrics/transfer.metrics.js';
import { IMAGE_EVENTS } from '../../notifications/image-notification.js';
import { NotifierService } from '../../notifications/notifier.service.js';
import { ImageRegistry } from '../../registry/image.registry.js';
import type { ImageRecord } from '../../registry/image-record.js';
import {
  RegistryError,
  RegistryErrorCode,
} from '../../registry/registry.error.js';
import type {
  ImageStore,
  StoredImage,
} from '../../stores/image-store.interface.js';
import { StoreError, StoreErrorCode } from '../../stores/store.error.js';
import {
  ByteLimitExceededError,
  ByteLimitStream,
} from './byte-limit.stream.js';
import { HashWorkerPool } from './hash-worker-pool.js';
import { DigestStream } from './digest.stream.js';
import { UploadTracker } from './upload-tracker.js';

export interface UploadRequest {
  /** The image, in the state the caller saw it (queued). */
  image: ImageRecord;
  source: Readable;
  store: ImageStore;
  /** Most bytes accepted (IMAGE_SIZE_CAP, or less when a quota applies). */
  maxBytes: number;
  limitReason?: 'size_cap' | 'quota';
  /** True when the source is the client's request body (its disconnect is a 400). */
  fromClient: boolean;
}

/**
 * Streams image bytes into a store and activates the image: queued → saving →
 * active, or killed with no bytes left behind when anything goes wrong.
 * Mirrors Glance's _upload / upload_data_to_store / _activate.
 */
@Injectable()
export class ImageUploader {
  private readonly logger = new Logger('Upload');

  constructor(
    private readonly registry: ImageRegistry,
    private readonly notifier: NotifierService,
    private readonly tracker: UploadTracker,
    private readonly config: AppConfig,
    private readonly transfers: TransferMetrics,
    private readonly hashWorkers: HashWorkerPool,
  ) {}

  async upload(request: UploadRequest): Promise<ImageRecord> {
    const { image, store } = request;
    const id = image.id;
    let saving: ImageRecord;
    try {
      saving = await this.registry.update(id, {
        fields: { status: 'saving' },
        fromState: 'queued',
        uploadNode: this.config.NODE_ID,
        uploadWorker: workerIdentity(),
      });
    } catch (err) {
      if (
        err instanceof RegistryError &&
        err.code === RegistryErrorCode.Conflict
      ) {
        throw ApiError.conflict('Cannot upload to an unqueued image');
      }
      throw err;
    }
    this.notifier.info(IMAGE_EVENTS.prepare, saving);

    const signal = this.tracker.begin(id);
    let stored: StoredImage;
    let digest: { md5: string; sha512: string; size: number };
    try {
      ({ stored, digest } = await this.streamToStore(request, signal));
    } catch (err) {
      await this.kill(id);
      this.tracker.end(id);
      const apiError = this.uploadError(err, request, signal);
      this.notifier.error(IMAGE_EVENTS.upload, apiError.message);
      throw apiError;
    }
    this.tracker.end(id);
    this.transfers.addUploaded(digest.size);

    const supplied = {
      size: image.size,
      checksum: image.checksum,
      os_hash_value: image.os_hash_value,
    };
    for (const [attr, actual] of [
      ['size', digest.size],
      ['checksum', digest.md5],
      ['os_hash_value', digest.sha512],
    ] as const) {
      const expected = supplied[attr];
      if (expected && expected !== actual) {
        const message = `Supplied ${attr} (${expected}) and ${attr} generated from uploaded image (${actual}) did not match. Setting image status to 'killed'.`;
        this.logger.warn(`${id}: ${message}`);
        // Bytes first: once the image reads killed, nothing of it is stored.
        await this.removeData(store, stored.location, id);
        await this.kill(id);
        this.notifier.error(IMAGE_EVENTS.upload, message);
        throw ApiError.badRequest(message);
      }
    }

    let active: ImageRecord;
    try {
      active = await this.registry.update(id, {
        fields: {
          status: 'active',
          size: digest.size,
          checksum: digest.md5,
          os_hash_algo: 'sha512',
          os_hash_value: digest.sha512,
        },
        location: { url: stored.location, metadata: stored.metadata ?? {} },
        fromState: 'saving',
      });
    } catch (err) {
      // Someone else finished, killed or deleted the image meanwhile: our bytes are surplus.
      await this.removeData(store, stored.location, id);
      const current = await this.registry.get(id, true);
      if (!current || current.deleted) {
        throw new ApiError(
          ApiErrorCode.PreconditionFailed,
          `Image ${id} could not be found after upload. The image may have been deleted during the upload.`,
        );
      }
      if (
        err instanceof RegistryError &&
        err.code === RegistryErrorCode.Conflict
      ) {
        throw ApiError.conflict('Image operation conflicts');
      }
      throw err;
    }
    this.notifier.info(IMAGE_EVENTS.upload, active);
    this.notifier.info(IMAGE_EVENTS.activate, active);
    this.notifier.info(IMAGE_EVENTS.update, active);
    return active;
  }

  private async streamToStore(
    request: UploadRequest,
    signal: AbortSignal,
  ): Promise<{
    stored: StoredImage;
    digest: { md5: string; sha512: string; size: number };
  }> {
    const limiter = new ByteLimitStream(
      request.maxBytes,
      request.limitReason ?? 'size_cap',
    );
    const digestStream = new DigestStream({ pool: this.hashWorkers });
    const feeding = (
      request.fromClient
        ? feedFromClient(request.source as IncomingMessage, limiter, digestStream, signal)
        : pipeline(request.source, limiter, digestStream, { signal })
    ).then(
      () => undefined,
      (err: unknown) => err,
    );
    const storing = request.store
      .add(request.image.id, digestStream, {
        expectedSize: request.image.size || null,
        signal,
      })
      .then(
        (stored) => ({ stored }),
        (err: unknown) => ({ err }),
      );
    const [feedError, storeResult] = await Promise.all([feeding, storing]);
    if ('err' in storeResult) {
      // The feeding side usually knows the real cause (limit, disconnect), but a
      // backend failure breaks the feed too: the store stopped reading it.
      if (storeResult.err instanceof StoreError) throw storeResult.err;
      throw feedError ?? storeResult.err;
    }
    if (feedError) {
      await this.removeData(
        request.store,
        storeResult.stored.location,
        request.image.id,
      );
      throw feedError;
    }
    const digest = await digestStream.result();
    return { stored: storeResult.stored, digest };
  }

  /** Glance's upload error table, plus 503 for an unreachable store. */
  private uploadError(
    err: unknown,
    request: UploadRequest,
    signal: AbortSignal,
  ): ApiError {
    const id = request.image.id;
    if (err instanceof ApiError) return err;
    if (err instanceof ByteLimitExceededError) {
      return new ApiError(
        ApiErrorCode.PayloadTooLarge,
        err.reason === 'quota'
          ? `Denying attempt to upload image because it exceeds the quota: the remaining storage is ${err.limit} bytes.`
          : `Denying attempt to upload image larger than ${this.config.IMAGE_SIZE_CAP} bytes.`,
      );
    }
    if (signal.aborted) {
      return new ApiError(
        ApiErrorCode.PreconditionFailed,
        `Image ${id} could not be found after upload. The image may have been deleted during the upload.`,
      );
    }
    if (err instanceof StoreError) {
      // Store messages can name internal endpoints: log them, answer generically.
      this.logger.error(`Upload of image ${id} failed in the store: ${err.message}`);
      switch (err.code) {
        case StoreErrorCode.StorageFull:
          return new ApiError(ApiErrorCode.PayloadTooLarge, 'Image storage media is full.');
        case StoreErrorCode.WriteDenied:
          return new ApiError(
            ApiErrorCode.ServiceUnavailable,
            'Insufficient permissions on image storage media.',
          );
        case StoreErrorCode.Unavailable:
          return new ApiError(
            ApiErrorCode.ServiceUnavailable,
            'The image store is unavailable; try again later.',
          );
        case StoreErrorCode.Duplicate:
          return ApiError.conflict('Attempt to upload duplicate image.');
        default:
          break;
      }
    }
    const body = request.source as IncomingMessage;
    if (request.fromClient && (!body.complete || clientGone(body))) {
      return ApiError.badRequest(
        'Client disconnected before sending all data to backend',
      );
    }
    this.logger.error(
      `Failed to upload image ${id}: ${(err as Error)?.stack ?? err}`,
    );
    return new ApiError(ApiErrorCode.Internal, `Failed to upload image ${id}`);
  }

  /** Marks a saving image killed; never throws (it runs on error paths). */
  async kill(id: string): Promise<void> {
    try {
      await this.registry.update(id, {
        fields: { status: 'killed' },
        fromState: 'saving',
      });
    } catch (err) {
      if (!(err instanceof RegistryError))
        this.logger.error(`Unable to kill image ${id}: ${err}`);
    }
  }

  private async removeData(
    store: ImageStore,
    location: string,
    id: string,
  ): Promise<void> {
    try {
      await store.delete(location);
    } catch (err) {
      this.logger.error(
        `Could not remove data of image ${id}: ${(err as Error).message}`,
      );
    }
  }
}

/**
 * Pipes a client's request body into `limiter → digest`. The body is not a
 * pipeline stage: a failed pipeline destroys its stages, and a destroyed
 * request stops reading its socket, so a client still sending (clients such
 * as python-requests read the answer only after the whole body) would block,
 * then see the connection reset instead of the error. Left alive and
 * unpiped, it is drained by the exception filter and the answer arrives.
 */
async function feedFromClient(
  body: IncomingMessage,
  limiter: ByteLimitStream,
  digest: DigestStream,
  signal: AbortSignal,
): Promise<void> {
  const cutShort = (): void => {
    if (!body.complete) limiter.destroy(new Error('client disconnected mid-upload'));
  };
  const failed = (err: Error): void => {
    limiter.destroy(err);
  };
  body.once('close', cutShort);
  body.once('error', failed);
  // The client may be gone already: its close fired during the database
  // calls before this (a slower registry widens that window), and a
  // destroyed body would never end the pipe.
  if (clientGone(body)) {
    limiter.destroy(new Error('client disconnected before the upload started'));
  }
  body.pipe(limiter);
  try {
    await pipeline(limiter, digest, { signal });
  } finally {
    body.off('close', cutShort);
    body.off('error', failed);
    body.unpipe(limiter);
  }
}

/** True once a request body can no longer deliver all its bytes. */
function clientGone(body: IncomingMessage): boolean {
  if (!body.complete) return body.destroyed || body.readableAborted || !!body.socket?.destroyed;
  return body.destroyed && !body.readableEnded;
}
