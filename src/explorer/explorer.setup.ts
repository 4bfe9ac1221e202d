import type { INestApplication } from '@nestjs/common';
import {
  DocumentBuilder,
  SwaggerModule,
  type OpenAPIObject,
} from '@nestjs/swagger';
import type { AppConfig } from '../config/app-config.js';
import { explorerRequestInterceptor } from './explorer-request.interceptor.js';

export const EXPLORER_PATH = 'api-docs';

/** The identity headers a person can set in the Authorize dialog, per AUTH_STRATEGY. */
const IDENTITY_HEADERS: Record<string, [string, string][]> = {
  keystone: [
    ['X-Auth-Token', 'A Keystone token (openstack token issue -f value -c id)'],
  ],
  noauth: [
    [
      'X-Tenant-Id',
      'Tenant (project) id you act as; images you create are owned by it',
    ],
    ['X-User-Id', 'User id (optional)'],
    [
      'X-Roles',
      'Comma-separated roles, e.g. member; leave every field empty to act as the unscoped admin',
    ],
  ],
  'trusted-headers': [
    [
      'X-Identity-Status',
      'Confirmed (set by the auth proxy; requests without it get 401)',
    ],
    ['X-Tenant-Id', 'Tenant (project) id you act as'],
    ['X-User-Id', 'User id (optional)'],
    ['X-Roles', 'Comma-separated roles, e.g. member or admin'],
  ],
};

function gib(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && value % 1024 === 0 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0
    ? `${bytes} bytes`
    : `${bytes} bytes (${value} ${units[unit]})`;
}

/** What `{{SETTING}}` stands for in the API's texts and enums. */
function settingValues(config: AppConfig): Record<string, string | string[]> {
  return {
    DISK_FORMATS: config.DISK_FORMATS,
    CONTAINER_FORMATS: config.CONTAINER_FORMATS,
    IMAGE_SIZE_CAP: gib(config.IMAGE_SIZE_CAP),
    API_LIMIT_MAX: String(config.API_LIMIT_MAX),
    LIMIT_PARAM_DEFAULT: String(config.LIMIT_PARAM_DEFAULT),
    DEFAULT_STORE: config.DEFAULT_STORE,
    IMAGE_MEMBER_QUOTA: String(config.IMAGE_MEMBER_QUOTA),
  };
}

/** Replaces `{{SETTING}}` in every text and `enum: ['{{SETTING}}']` with the values in force. */
function fillSettings<T>(
  node: T,
  values: Record<string, string | string[]>,
): T {
  const fill = (text: string) =>
    text.replace(/\{\{([A-Z_]+)\}\}/g, (match, name: string) => {
      const value = values[name];
      if (value === undefined) return match;
      return Array.isArray(value) ? value.join(', ') : value;
    });
  const walk = (value: unknown): unknown => {
    if (typeof value === 'string') return fill(value);
    if (Array.isArray(value)) {
      const only =
        value.length === 1 && typeof value[0] === 'string'
          ? /^\{\{([A-Z_]+)\}\}$/.exec(value[0])
          : null;
      const list = only ? values[only[1]] : undefined;
      if (Array.isArray(list)) return [...list];
      return value.map(walk);
    }
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, walk(v)]),
      );
    }
    return value;
  };
  return walk(node) as T;
}

/** The OpenAPI document, built once at boot from the configuration in force. */
export function buildExplorerDocument(
  app: INestApplication,
  config: AppConfig,
): OpenAPIObject {
  const headers = IDENTITY_HEADERS[config.AUTH_STRATEGY] ?? [];
  const builder = new DocumentBuilder()
    .setTitle('Glance v1 image service')
    .setDescription(
      [
        'OpenStack Glance v1 (Icehouse) images API.',
        `Identity (AUTH_STRATEGY=${config.AUTH_STRATEGY}): press Authorize and fill in ${headers.map(([h]) => h).join(', ')}; they are sent with every request.`,
        'Custom properties: the "x-image-meta-properties" header and the "properties" filter take a JSON object or key=value pairs; this page sends them as `x-image-meta-property-<key>` headers and `property-<key>` query parameters.',
        'Downloads (GET /v1/images/{id}) are offered as `<name>.<disk_format>`.',
      ].join('\n\n'),
    )
    .setVersion('1.1');
  for (const [name, description] of headers) {
    builder.addApiKey(
      { type: 'apiKey', in: 'header', name, description },
      name,
    );
  }
  const document = SwaggerModule.createDocument(app, builder.build());
  // One requirement naming every identity header: whatever was filled in goes with every request.
  document.security = [Object.fromEntries(headers.map(([name]) => [name, []]))];
  return fillSettings(document, settingValues(config));
}

/** Swagger UI at /api-docs (document at /api-docs-json), with the explorer's request interceptor. */
export function setupExplorer(app: INestApplication, config: AppConfig): void {
  const document = buildExplorerDocument(app, config);
  SwaggerModule.setup(EXPLORER_PATH, app, document, {
    swaggerOptions: {
      requestInterceptor: explorerRequestInterceptor,
      persistAuthorization: true,
      tryItOutEnabled: true,
    },
  });
}
