import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { createAppLogger, isLogLevelEnabled } from '../logging/app-logger.js';
import { PinoLogger } from '../logging/pino.logger.js';
import { AppConfig, ConfigError, loadConfig } from './app-config.js';

describe('loadConfig', () => {
  it('uses the documented defaults when the environment is empty', () => {
    const config = loadConfig({});
    expect(config.PORT).toBe(9292);
    expect(config.DATABASE_URL).toBe('sqlite:data/glance.sqlite');
    expect(config.AUTH_STRATEGY).toBe('noauth');
    expect(config.HASH_WORKERS).toBe(Math.min(2, availableParallelism()));
    expect(config.HASH_MAX_SLABS).toBe(8);
    expect(config.LIST_PAGE_CACHE_SIZE).toBe(256);
    expect(config.DISK_FORMATS).toContain('qcow2');
  });

  it('converts numbers, booleans and lists from strings', () => {
    const config = loadConfig({
      PORT: '8080',
      HASH_WORKERS: '3',
      OWNER_IS_TENANT: 'false',
      DISK_FORMATS: 'raw, qcow2',
    });
    expect(config.PORT).toBe(8080);
    expect(config.HASH_WORKERS).toBe(3);
    expect(config.OWNER_IS_TENANT).toBe(false);
    expect(config.DISK_FORMATS).toEqual(['raw', 'qcow2']);
  });

  it.each([
    ['info', 'log'],
    ['INFO', 'log'],
    ['log', 'log'],
    ['warning', 'warn'],
    ['warn', 'warn'],
    ['trace', 'verbose'],
    ['verbose', 'verbose'],
    ['debug', 'debug'],
    ['error', 'error'],
    ['critical', 'fatal'],
    ['fatal', 'fatal'],
    ['silent', 'silent'],
  ])('accepts LOG_LEVEL=%s (pino, oslo.log and Nest names) as %s', (given, level) => {
    expect(loadConfig({ LOG_LEVEL: given }).LOG_LEVEL).toBe(level);
  });

  it('writes nothing at LOG_LEVEL=silent and info lines at LOG_LEVEL=info', () => {
    const quiet = createAppLogger({ LOG_LEVEL: loadConfig({ LOG_LEVEL: 'silent' }).LOG_LEVEL, LOG_FORMAT: 'json' });
    expect((quiet as PinoLogger).pino.level).toBe('silent');
    const info = createAppLogger({ LOG_LEVEL: loadConfig({ LOG_LEVEL: 'info' }).LOG_LEVEL, LOG_FORMAT: 'json' });
    expect((info as PinoLogger).pino.level).toBe('info');
    expect(isLogLevelEnabled(loadConfig({ LOG_LEVEL: 'info' }).LOG_LEVEL, 'log')).toBe(true);
    expect(isLogLevelEnabled(loadConfig({ LOG_LEVEL: 'warning' }).LOG_LEVEL, 'log')).toBe(false);
    expect(isLogLevelEnabled('silent', 'fatal')).toBe(false);
  });

  it.each([
    ['LOG_LEVEL', 'loud'],
    ['PORT', 'http'],
    ['HASH_WORKERS', '0'],
    ['HASH_WORKERS', 'two'],
    ['AUTH_STRATEGY', 'ldap'],
    ['DATABASE_URL', 'ftp://db/glance'],
    ['NOTIFICATION_DRIVER', 'kafka'],
    ['IMAGE_CACHE_MAX_SIZE', '0'],
    ['IMAGE_CACHE_STALL_TIME', 'a day'],
    ['IMAGE_CACHE_PREFETCH_INTERVAL', '-1'],
    ['LIST_PAGE_CACHE_SIZE', '-1'],
  ])('refuses %s=%s with a message naming the variable', (name, value) => {
    let error: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(`${name}=${JSON.stringify(value)}`);
  });

  it('documents every variable in README and .env.example', () => {
    const readme = readFileSync('README.md', 'utf8');
    const example = readFileSync('.env.example', 'utf8');
    const missing = Object.keys(new AppConfig()).filter(
      (name) => !readme.includes(`\`${name}\``) || !example.includes(name),
    );
    expect(missing).toEqual([]);
  });
});
