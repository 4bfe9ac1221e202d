import { plainToInstance, Transform } from 'class-transformer';
import { availableParallelism, hostname } from 'node:os';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  validateSync,
} from 'class-validator';

const toInt = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim())
    ? Number(value.trim())
    : value;
const toBool = ({ value }: { value: unknown }) => {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  return value;
};
const toList = ({ value }: { value: unknown }) =>
  typeof value === 'string'
    ? value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : value;

/**
 * LOG_LEVEL spellings of pino, oslo.log / Python logging and syslog-minded
 * tools, mapped to Nest's levels (`log` is info, `verbose` is trace).
 */
const LOG_LEVEL_ALIASES: Record<string, string> = {
  trace: 'verbose',
  info: 'log',
  notice: 'log',
  warning: 'warn',
  critical: 'fatal',
  off: 'silent',
  none: 'silent',
};
const toLogLevel = ({ value }: { value: unknown }) => {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  return LOG_LEVEL_ALIASES[v] ?? v;
};

export const DEFAULT_DISK_FORMATS =
  'ami,ari,aki,vhd,vmdk,raw,qcow2,vdi,iso';
export const DEFAULT_CONTAINER_FORMATS = 'ami,ari,aki,bare,ovf,ova';

/**
 * Every setting the service reads from the environment, validated once at boot.
 * Property names are the environment variable names, so errors name them.
 */
export class AppConfig {
  @Transform(toInt) @IsInt() @Min(0) @Max(65535)
  PORT = 9292;

  @IsString()
  HOST = '0.0.0.0';

  @IsString()
  @Matches(/^(sqlite:.+|postgres(ql)?:\/\/.+|mysql:\/\/.+|mariadb:\/\/.+)$/, {
    message:
      'DATABASE_URL must be sqlite:PATH, postgres://user:pass@host:port/db or mysql://user:pass@host:port/db',
  })
  DATABASE_URL = 'sqlite:data/glance.sqlite';

  @IsString()
  DEFAULT_STORE = 'file';

  @IsString()
  FILESYSTEM_STORE_DATADIR = 'data/images';

  @IsIn(['noauth', 'trusted-headers', 'keystone'])
  AUTH_STRATEGY: 'noauth' | 'trusted-headers' | 'keystone' = 'noauth';

  @IsString()
  ADMIN_ROLE = 'admin';

  @Transform(toBool) @IsBoolean()
  OWNER_IS_TENANT = true;

  @IsOptional() @IsString()
  POLICY_FILE?: string;

  /** Keystone base URL (AUTH_STRATEGY=keystone), e.g. http://keystone:5000. */
  @IsOptional() @IsString()
  KEYSTONE_URL?: string;

  @IsString()
  KEYSTONE_SERVICE_USER = 'glance';

  @IsString()
  KEYSTONE_SERVICE_PASSWORD = '';

  @IsString()
  KEYSTONE_SERVICE_PROJECT = 'service';

  @IsString()
  KEYSTONE_SERVICE_USER_DOMAIN = 'Default';

  @IsString()
  KEYSTONE_SERVICE_PROJECT_DOMAIN = 'Default';

  /** Seconds a validated token is trusted before Keystone is asked again. */
  @Transform(toInt) @IsInt() @Min(0)
  KEYSTONE_CACHE_TTL = 300;

  /** Largest image accepted, in bytes (Glance's image_size_cap, 1 TiB). */
  @Transform(toInt) @IsInt() @Min(0)
  IMAGE_SIZE_CAP = 1099511627776;

  @Transform(toList) @IsString({ each: true })
  DISK_FORMATS: string[] = DEFAULT_DISK_FORMATS.split(',');

  @Transform(toList) @IsString({ each: true })
  CONTAINER_FORMATS: string[] = DEFAULT_CONTAINER_FORMATS.split(',');

  @IsIn(['log', 'noop', 'messaging'])
  NOTIFICATION_DRIVER: 'log' | 'noop' | 'messaging' = 'noop';

  /** rabbit://user:pass@host:port/vhost for NOTIFICATION_DRIVER=messaging. */
  @IsString()
  TRANSPORT_URL = 'rabbit://guest:guest@127.0.0.1:5672/';

  /** Exchange the notifications are published to (oslo's control_exchange). */
  @IsString()
  NOTIFICATION_EXCHANGE = 'glance';

  /** Routing key prefix: <topic>.info, <topic>.error (oslo's notification_topics). */
  @IsString()
  NOTIFICATION_TOPIC = 'notifications';

  /** Most events kept while the broker is unreachable; older ones are dropped and counted. */
  @Transform(toInt) @IsInt() @Min(1)
  NOTIFICATION_BUFFER_SIZE = 10000;

  /** Identifies this API node in the database (uploads it runs, heartbeats). */
  @IsString()
  NODE_ID = hostname();

  /** Seconds between this node's heartbeats. */
  @Transform(toInt) @IsInt() @Min(1)
  HEARTBEAT_INTERVAL = 10;

  /** A saving image whose node has not beaten for this long is killed and its partial data removed. */
  @Transform(toInt) @IsInt() @Min(1)
  STALE_UPLOAD_SECONDS = 120;

  /**
   * Threads hashing uploads; with two or more, md5 and sha512 of one upload
   * run on two of them in parallel. Each costs ~12 MiB. Default: 2 when the
   * machine has two cores or more, else 1.
   */
  @Transform(toInt) @IsInt() @Min(1)
  HASH_WORKERS = Math.min(2, availableParallelism());

  /**
   * 1 MiB buffers shared by every upload's hashing; all of them busy, uploads
   * wait (and stop reading) for one. Bounds hashing memory whatever the
   * number of concurrent uploads.
   */
  @Transform(toInt) @IsInt() @Min(1)
  HASH_MAX_SLABS = 8;

  /**
   * Seconds a client connection may stay silent mid-request (Glance's
   * client_socket_timeout); 0 = never. A transfer may take as long as it
   * keeps moving: there is no limit on a whole request.
   */
  @Transform(toInt) @IsInt() @Min(0)
  CLIENT_SOCKET_TIMEOUT = 900;

  /** On SIGTERM, seconds in-flight transfers may take to finish before uploads are killed. */
  @Transform(toInt) @IsInt() @Min(0)
  SHUTDOWN_TIMEOUT = 30;

  /** API processes sharing PORT on this node (node:cluster); 1 serves from one process. */
  @Transform(toInt) @IsInt() @Min(1) @Max(64)
  WORKERS = 1;

  /** Default page size of image lists (Glance's limit_param_default). */
  @Transform(toInt) @IsInt() @Min(1)
  LIMIT_PARAM_DEFAULT = 25;

  /**
   * SQLite only: list pages a process keeps while the database is unchanged
   * (any write, by any process, drops them all); 0 reads every page again.
   */
  @Transform(toInt) @IsInt() @Min(0)
  LIST_PAGE_CACHE_SIZE = 256;

  /** Largest page size a client may ask for (Glance's api_limit_max). */
  @Transform(toInt) @IsInt() @Min(1)
  API_LIMIT_MAX = 1000;

  /** Most members one image may have; negative means unlimited (Glance's image_member_quota). */
  @Transform(toInt) @IsInt()
  IMAGE_MEMBER_QUOTA = 128;

  /** Most verbose level written; also info, warning, trace, critical... (see toLogLevel); silent writes nothing. */
  @Transform(toLogLevel)
  @IsIn(['silent', 'fatal', 'error', 'warn', 'log', 'debug', 'verbose'], {
    message:
      'LOG_LEVEL must be one of trace|verbose, debug, info|log, warn|warning, error, fatal|critical, silent',
  })
  LOG_LEVEL = 'log';

  /** json: one JSON object per line on stdout (pino); text: Nest's human-readable console format. */
  @IsIn(['json', 'text'])
  LOG_FORMAT: 'json' | 'text' = 'json';

  /** One info line per request: method, path, status, duration, bytes. */
  @Transform(toBool) @IsBoolean()
  ACCESS_LOG = true;

  @IsOptional() @IsString()
  PROPERTY_PROTECTION_FILE?: string;

  @IsIn(['roles', 'policies'])
  PROPERTY_PROTECTION_RULE_FORMAT: 'roles' | 'policies' = 'roles';

  /** Most properties per image; negative = unlimited (Glance's image_property_quota). */
  @Transform(toInt) @IsInt()
  IMAGE_PROPERTY_QUOTA = 128;

  /** Most non-deleted images per owner; 0 = unlimited. */
  @Transform(toInt) @IsInt() @Min(0)
  IMAGE_COUNT_QUOTA = 0;

  /** Total bytes of image data per owner; 0 = unlimited (Glance's user_storage_quota). */
  @Transform(toInt) @IsInt() @Min(0)
  USER_STORAGE_QUOTA = 0;

  /** Mutating requests per client and minute; 0 = no rate limit. */
  @Transform(toInt) @IsInt() @Min(0)
  RATE_LIMIT_PER_MINUTE = 0;

  /** Hosts and CIDRs that external locations and copy-from may reach despite the SSRF guard. */
  @Transform(toList) @IsString({ each: true })
  EXTERNAL_SOURCE_ALLOWLIST: string[] = [];

  /** Keep deleted images' data as pending_delete until the scrubber removes it. */
  @Transform(toBool) @IsBoolean()
  DELAYED_DELETE = false;

  /** Seconds a pending_delete image's data is kept before scrubbing. */
  @Transform(toInt) @IsInt() @Min(0)
  SCRUB_TIME = 43200;

  /** Swift store (enabled when SWIFT_STORE_AUTH_URL is set): v1 auth URL, user, key. */
  @IsOptional() @IsString()
  SWIFT_STORE_AUTH_URL?: string;

  @IsOptional() @IsString()
  SWIFT_STORE_USER?: string;

  @IsOptional() @IsString()
  SWIFT_STORE_KEY?: string;

  @IsString()
  SWIFT_STORE_CONTAINER = 'glance';

  /** Images above this many bytes (or of unknown size) are stored as Static Large Objects. */
  @Transform(toInt) @IsInt() @Min(1)
  SWIFT_STORE_LARGE_OBJECT_SIZE = 5 * 1024 * 1024 * 1024;

  /** Segment size of Static Large Objects, in bytes. */
  @Transform(toInt) @IsInt() @Min(1)
  SWIFT_STORE_LARGE_OBJECT_CHUNK_SIZE = 200 * 1024 * 1024;

  /** S3 store (enabled when S3_STORE_ENDPOINT is set). */
  @IsOptional() @IsString()
  S3_STORE_ENDPOINT?: string;

  @IsString()
  S3_STORE_REGION = 'us-east-1';

  @IsString()
  S3_STORE_BUCKET = 'glance';

  @IsOptional() @IsString()
  S3_STORE_ACCESS_KEY?: string;

  @IsOptional() @IsString()
  S3_STORE_SECRET_KEY?: string;

  @Transform(toBool) @IsBoolean()
  S3_STORE_FORCE_PATH_STYLE = true;

  /** Multipart part size in bytes (at least 5 MiB). */
  @Transform(toInt) @IsInt() @Min(5 * 1024 * 1024)
  S3_STORE_PART_SIZE = 16 * 1024 * 1024;

  /** Seconds between scrubber runs inside the service (with DELAYED_DELETE). */
  @Transform(toInt) @IsInt() @Min(1)
  SCRUBBER_INTERVAL = 300;

  /** Image cache folder on this node (Glance's image_cache_dir); unset = no cache. */
  @IsOptional() @IsString() @Matches(/^\S/, { message: 'IMAGE_CACHE_DIR must be a folder path' })
  IMAGE_CACHE_DIR?: string;

  /** Bytes the cache may hold before the pruner removes least recently used entries. */
  @Transform(toInt) @IsInt() @Min(1)
  IMAGE_CACHE_MAX_SIZE = 10 * 1024 * 1024 * 1024;

  /** Seconds after which an incomplete cache file counts as stalled (the cleaner removes it). */
  @Transform(toInt) @IsInt() @Min(1)
  IMAGE_CACHE_STALL_TIME = 86400;

  /** Seconds between the service's own prune, clean and prefetch passes (0 = off). */
  @Transform(toInt) @IsInt() @Min(0)
  IMAGE_CACHE_PRUNE_INTERVAL = 600;

  @Transform(toInt) @IsInt() @Min(0)
  IMAGE_CACHE_CLEAN_INTERVAL = 3600;

  @Transform(toInt) @IsInt() @Min(0)
  IMAGE_CACHE_PREFETCH_INTERVAL = 300;

  /** Queued images the prefetcher reads at once. */
  @Transform(toInt) @IsInt() @Min(1)
  IMAGE_CACHE_PREFETCH_CONCURRENCY = 2;
}

/** Thrown at boot when an environment variable is invalid; names the variable. */
export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const defaults = new AppConfig();
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(defaults)) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const config = plainToInstance(AppConfig, raw, {
    exposeDefaultValues: true,
  });
  const errors = validateSync(config, { forbidUnknownValues: false });
  if (errors.length > 0) {
    const lines = errors.map(
      (e) =>
        `${e.property}=${JSON.stringify(env[e.property])}: ${Object.values(e.constraints ?? {}).join('; ')}`,
    );
    throw new ConfigError(`Invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return config;
}
