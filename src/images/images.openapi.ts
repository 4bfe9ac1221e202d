import { applyDecorators } from '@nestjs/common';
import { ApiHeader, ApiQuery } from '@nestjs/swagger';

const META_HEADERS: [string, string][] = [
  ['x-image-meta-id', 'Client-chosen image id (UUID); 409 if it exists or existed'],
  ['x-image-meta-name', 'Image name, at most 255 characters'],
  ['x-image-meta-disk_format', 'ami, ari, aki, vhd, vmdk, raw, qcow2, vdi, iso (DISK_FORMATS)'],
  ['x-image-meta-container_format', 'ami, ari, aki, bare, ovf, ova (CONTAINER_FORMATS)'],
  ['x-image-meta-size', 'Size in bytes (integer >= 0); checked against the uploaded bytes'],
  ['x-image-meta-checksum', 'Expected MD5 of the data; a mismatch kills the image (400)'],
  ['x-image-meta-is_public', 'True/False: visible to every tenant (publicize_image policy)'],
  ['x-image-meta-protected', 'True/False: a protected image cannot be deleted'],
  ['x-image-meta-min_ram', 'Minimum RAM in MB (integer >= 0)'],
  ['x-image-meta-min_disk', 'Minimum disk in GB (integer >= 0)'],
  ['x-image-meta-owner', 'Owner tenant (admins only)'],
  ['x-image-meta-store', 'Store to upload into (file, swift, s3)'],
  ['x-image-meta-location', 'External http(s) URL of the data (read-only store)'],
  ['x-glance-api-copy-from', 'External http(s) URL to copy the data from, asynchronously'],
  ['x-image-meta-property-<key>', 'Free-form property <key> (dashes become underscores)'],
];

/** OpenAPI: the x-image-meta-* request headers of create and update. */
export const ApiImageMetaHeaders = () =>
  applyDecorators(
    ...META_HEADERS.map(([name, description]) => ApiHeader({ name, description, required: false })),
  );

const LIST_PARAMS: [string, string][] = [
  ['name', 'Exact name'],
  ['status', 'queued, saving, active, killed, deleted, pending_delete'],
  ['container_format', 'Exact container format'],
  ['disk_format', 'Exact disk format'],
  ['min_ram', 'Exact min_ram'],
  ['min_disk', 'Exact min_disk'],
  ['size_min', 'Smallest size in bytes'],
  ['size_max', 'Largest size in bytes'],
  ['is_public', 'True, False or None (admins: None lists every image)'],
  ['changes-since', 'ISO 8601 time: images updated after it, deleted ones included'],
  ['protected', 'True or False'],
  ['property-<key>', 'Exact value of property <key>'],
  ['limit', 'Page size (default 25, at most API_LIMIT_MAX)'],
  ['marker', 'Id of the last image of the previous page'],
  ['sort_key', 'name, status, container_format, disk_format, size, id, created_at, updated_at'],
  ['sort_dir', 'asc or desc (default desc)'],
];

/** OpenAPI: filters and paging parameters of the image lists. */
export const ApiImageListQuery = () =>
  applyDecorators(
    ...LIST_PARAMS.map(([name, description]) => ApiQuery({ name, description, required: false })),
  );
