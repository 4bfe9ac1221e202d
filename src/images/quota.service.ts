import { Injectable } from '@nestjs/common';
import { ApiError, ApiErrorCode } from '../common/api-error.js';
import type { RequestContext } from '../common/request-context.js';
import { AppConfig } from '../config/app-config.js';
import { ImageRegistry } from '../registry/image.registry.js';

/** Per-image and per-owner limits (property, image count and storage quotas). */
@Injectable()
export class QuotaService {
  constructor(
    private readonly registry: ImageRegistry,
    private readonly config: AppConfig,
  ) {}

  /** Glance's _enforce_image_property_quota (413). */
  enforcePropertyQuota(
    properties: Record<string, unknown>,
    original?: Record<string, unknown>,
    purge = false,
  ): void {
    const quota = this.config.IMAGE_PROPERTY_QUOTA;
    if (quota < 0) return;
    const names = new Set(Object.keys(properties));
    if (!purge && original) for (const k of Object.keys(original)) names.add(k);
    if (names.size > quota) {
      throw new ApiError(
        ApiErrorCode.PayloadTooLarge,
        `The limit has been exceeded on the number of allowed image properties. Attempted: ${names.size}, Maximum: ${quota}`,
      );
    }
  }

  /** IMAGE_COUNT_QUOTA: one more image than allowed is a 413. */
  async enforceImageCount(ctx: RequestContext): Promise<void> {
    const quota = this.config.IMAGE_COUNT_QUOTA;
    if (quota === 0 || ctx.owner === null) return;
    const count = await this.registry.countOwnedImages(ctx.owner);
    if (count >= quota) {
      throw new ApiError(
        ApiErrorCode.PayloadTooLarge,
        `The limit has been exceeded on the number of allowed images. Attempted: ${count + 1}, Maximum: ${quota}`,
      );
    }
  }

  /** The count limit the registry re-checks atomically when `owner` is the caller's own. */
  ownedLimit(ctx: RequestContext, owner: string | null): number | undefined {
    const quota = this.config.IMAGE_COUNT_QUOTA;
    return quota === 0 || owner === null || owner !== ctx.owner ? undefined : quota;
  }

  imageCountError(count: number): ApiError {
    return new ApiError(
      ApiErrorCode.PayloadTooLarge,
      `The limit has been exceeded on the number of allowed images. Attempted: ${count + 1}, Maximum: ${this.config.IMAGE_COUNT_QUOTA}`,
    );
  }

  /** Bytes `owner` may still store for `imageId`, or null when unlimited. */
  async remainingStorage(owner: string | null, imageId: string): Promise<number | null> {
    const quota = this.config.USER_STORAGE_QUOTA;
    if (quota === 0 || owner === null) return null;
    const used = await this.registry.storageUsedBy(owner, imageId);
    return Math.max(0, quota - used);
  }

  storageQuotaError(remaining: number): ApiError {
    return new ApiError(
      ApiErrorCode.PayloadTooLarge,
      `Denying attempt to upload image because it exceeds the quota: the remaining storage is ${remaining} bytes.`,
    );
  }
}
