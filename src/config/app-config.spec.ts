import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AppConfig, ConfigError, loadConfig } from './app-config.js';

describe('loadConfig', () => {
  it('uses the documented defaults when the environment is empty', () => {
    const config = loadConfig({});
    expect(config.PORT).toBe(9292);
    expect(config.DATABASE_URL).toBe('sqlite:data/glance.sqlite');
    expect(config.AUTH_STRATEGY).toBe('noauth');
    expect(config.HASH_WORKERS).toBe(1);
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
    ['PORT', 'http'],
    ['HASH_WORKERS', '0'],
    ['HASH_WORKERS', 'two'],
    ['AUTH_STRATEGY', 'ldap'],
    ['DATABASE_URL', 'ftp://db/glance'],
    ['NOTIFICATION_DRIVER', 'kafka'],
    ['IMAGE_CACHE_MAX_SIZE', '0'],
    ['IMAGE_CACHE_STALL_TIME', 'a day'],
    ['IMAGE_CACHE_PREFETCH_INTERVAL', '-1'],
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
