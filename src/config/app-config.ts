import { plainToInstance, Transform } from 'class-transformer';
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

  /** Largest image accepted, in bytes (Glance's image_size_cap, 1 TiB). */
  @Transform(toInt) @IsInt() @Min(0)
  IMAGE_SIZE_CAP = 1099511627776;

  @Transform(toList) @IsString({ each: true })
  DISK_FORMATS: string[] = DEFAULT_DISK_FORMATS.split(',');

  @Transform(toList) @IsString({ each: true })
  CONTAINER_FORMATS: string[] = DEFAULT_CONTAINER_FORMATS.split(',');

  @IsIn(['log', 'noop', 'messaging'])
  NOTIFICATION_DRIVER: 'log' | 'noop' | 'messaging' = 'noop';

  /** Default page size of image lists (Glance's limit_param_default). */
  @Transform(toInt) @IsInt() @Min(1)
  LIMIT_PARAM_DEFAULT = 25;

  /** Largest page size a client may ask for (Glance's api_limit_max). */
  @Transform(toInt) @IsInt() @Min(1)
  API_LIMIT_MAX = 1000;

  @IsIn(['fatal', 'error', 'warn', 'log', 'debug', 'verbose'])
  LOG_LEVEL = 'log';
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
