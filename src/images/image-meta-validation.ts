import { ApiError } from '../common/api-error.js';
import type { AppConfig } from '../config/app-config.js';

const AMAZON_FORMATS = new Set(['aki', 'ari', 'ami']);

interface FormatFields {
  name?: string | null;
  disk_format?: string | null;
  container_format?: string | null;
  checksum?: string | null;
}

/** Glance's checksum column is String(32): an MD5 hex digest. */
const CHECKSUM_MAX_LENGTH = 32;

/**
 * Glance's validate_image_meta: known formats, name and checksum length, and the rule that
 * aki/ari/ami disk and container formats must match (filling in a missing one).
 */
export function validateImageMeta<T extends FormatFields>(
  values: T,
  config: Pick<AppConfig, 'DISK_FORMATS' | 'CONTAINER_FORMATS'>,
): T {
  const { name, disk_format: disk, container_format: container } = values;
  if ('disk_format' in values && !config.DISK_FORMATS.includes(disk as string)) {
    throw ApiError.badRequest(`Invalid disk format '${disk}' for image.`);
  }
  if ('container_format' in values && !config.CONTAINER_FORMATS.includes(container as string)) {
    throw ApiError.badRequest(`Invalid container format '${container}' for image.`);
  }
  const checksum = values.checksum;
  if (checksum && checksum.length > CHECKSUM_MAX_LENGTH) {
    throw ApiError.badRequest(
      `Invalid checksum: at most ${CHECKSUM_MAX_LENGTH} characters (an MD5 hex digest), got ${checksum.length}`,
    );
  }
  if (name && [...name].length > 255) {
    throw ApiError.badRequest(`Image name too long: ${[...name].length}`);
  }
  const isAmazon = (f: string | null | undefined) => !!f && AMAZON_FORMATS.has(f);
  if (isAmazon(disk) || isAmazon(container)) {
    if (disk === null || disk === undefined) {
      values.disk_format = container;
    } else if (container === null || container === undefined) {
      values.container_format = disk;
    } else if (disk !== container) {
      throw ApiError.badRequest(
        "Invalid mix of disk and container formats. When setting a disk or container format to one of 'aki', 'ari', or 'ami', the container and disk formats must match.",
      );
    }
  }
  return values;
}
