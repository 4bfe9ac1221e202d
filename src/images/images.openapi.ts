import { applyDecorators } from '@nestjs/common';
import {
  ApiHeader,
  ApiQuery,
  type ParameterObject,
  type SchemaObject,
} from '@nestjs/swagger';
import { SORT_KEYS } from '../registry/image-list-query.js';

// `{{SETTING}}` in a text and `enum: ['{{SETTING}}']` are filled in at boot
// with the values in force (src/explorer/explorer.setup.ts).

const text = (description: string): SchemaObject => ({
  type: 'string',
  description,
});
const bool: SchemaObject = { type: 'boolean' };
const count: SchemaObject = { type: 'integer', minimum: 0 };

/** Explorer-only: how a person sets and filters custom properties (see the explorer's request interceptor). */
export const PROPERTIES_HEADER = 'x-image-meta-properties';
export const PROPERTIES_QUERY = 'properties';
const PROPERTIES_FORMAT =
  'a JSON object ({"os_distro": "debian", "hw_disk_bus": "virtio"}) or key=value pairs separated by ";" (os_distro=debian; hw_disk_bus=virtio)';

const META_HEADERS: [string, string, SchemaObject][] = [
  [
    'x-image-meta-id',
    'Client-chosen image id (UUID); 409 if it exists or existed',
    { type: 'string', format: 'uuid' },
  ],
  ['x-image-meta-name', 'Image name, at most 255 characters', text('name')],
  [
    'x-image-meta-disk_format',
    'One of {{DISK_FORMATS}}',
    { type: 'string', enum: ['{{DISK_FORMATS}}'] },
  ],
  [
    'x-image-meta-container_format',
    'One of {{CONTAINER_FORMATS}}',
    { type: 'string', enum: ['{{CONTAINER_FORMATS}}'] },
  ],
  [
    'x-image-meta-size',
    'Size in bytes, at most {{IMAGE_SIZE_CAP}}; checked against the uploaded bytes',
    count,
  ],
  [
    'x-image-meta-checksum',
    'Expected MD5 of the data (32 hex digits); a mismatch kills the image (400)',
    { type: 'string', maxLength: 32 },
  ],
  [
    'x-image-meta-is_public',
    'Visible to every tenant (publicize_image policy)',
    bool,
  ],
  ['x-image-meta-protected', 'A protected image cannot be deleted', bool],
  ['x-image-meta-min_ram', 'Minimum RAM in MB', count],
  ['x-image-meta-min_disk', 'Minimum disk in GB', count],
  ['x-image-meta-owner', 'Owner tenant (admins only)', text('tenant')],
  [
    'x-image-meta-store',
    'Store to upload into (default {{DEFAULT_STORE}})',
    text('store'),
  ],
  [
    'x-image-meta-location',
    'External http(s) URL of the data (read-only store; reachable hosts only)',
    { type: 'string', format: 'uri' },
  ],
  [
    'x-glance-api-copy-from',
    'External http(s) URL to copy the data from, asynchronously',
    { type: 'string', format: 'uri' },
  ],
  [
    PROPERTIES_HEADER,
    `Custom properties, as ${PROPERTIES_FORMAT}. Explorer only: this page sends each one as its own \`x-image-meta-property-<key>\` header, which is what curl and glanceclient send (the service itself refuses an x-image-meta-properties header with 400). Values may be UTF-8.`,
    { type: 'string' },
  ],
];

/** OpenAPI: the x-image-meta-* request headers of create and update. */
export const ApiImageMetaHeaders = () =>
  applyDecorators(
    ...META_HEADERS.map(([name, description, schema]) =>
      ApiHeader({ name, description, required: false, schema }),
    ),
  );

/** OpenAPI: x-glance-registry-purge-props; the explorer pre-fills false, the wire default stays true. */
export const ApiPurgePropsHeader = () =>
  ApiHeader({
    name: 'x-glance-registry-purge-props',
    required: false,
    description:
      "Without this header (or with true), a metadata update DELETES every custom property not sent in this request: Glance's wire default. The explorer pre-fills false, which keeps them (as glanceclient does); choose true only to replace the whole property set. Ignored when uploading data.",
    schema: { type: 'string', enum: ['false', 'true'] },
    example: 'false',
  } as ParameterObject & { name: string });

const LIST_PARAMS: [string, string, SchemaObject][] = [
  ['name', 'Exact name', text('name')],
  [
    'status',
    'Exact status',
    {
      type: 'string',
      enum: [
        'queued',
        'saving',
        'active',
        'killed',
        'deleted',
        'pending_delete',
      ],
    },
  ],
  [
    'container_format',
    'Exact container format',
    { type: 'string', enum: ['{{CONTAINER_FORMATS}}'] },
  ],
  [
    'disk_format',
    'Exact disk format',
    { type: 'string', enum: ['{{DISK_FORMATS}}'] },
  ],
  ['min_ram', 'Exact min_ram', count],
  ['min_disk', 'Exact min_disk', count],
  ['size_min', 'Smallest size in bytes', count],
  ['size_max', 'Largest size in bytes', count],
  [
    'is_public',
    'True: public images; False: private ones; None (admins): every image',
    { type: 'string', enum: ['True', 'False', 'None'] },
  ],
  [
    'changes-since',
    'ISO 8601 time: images updated after it, deleted ones included',
    { type: 'string', format: 'date-time' },
  ],
  ['protected', 'Protected or not', bool],
  [
    PROPERTIES_QUERY,
    `Exact values of custom properties, as ${PROPERTIES_FORMAT}. Explorer only: this page sends each one as a \`property-<key>=<value>\` query parameter, which is what curl and glanceclient send; the service itself ignores "properties".`,
    { type: 'string' },
  ],
  [
    'limit',
    'Page size (default {{LIMIT_PARAM_DEFAULT}}, at most {{API_LIMIT_MAX}})',
    { type: 'integer', minimum: 0 },
  ],
  [
    'marker',
    'Id of the last image of the previous page',
    { type: 'string', format: 'uuid' },
  ],
  [
    'sort_key',
    'Sort key (default created_at)',
    { type: 'string', enum: [...SORT_KEYS] },
  ],
  [
    'sort_dir',
    'Sort direction (default desc)',
    { type: 'string', enum: ['asc', 'desc'] },
  ],
];

/** OpenAPI: filters and paging parameters of the image lists. */
export const ApiImageListQuery = () =>
  applyDecorators(
    ...LIST_PARAMS.map(([name, description, schema]) =>
      ApiQuery({ name, description, required: false, schema }),
    ),
  );
