import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppModule } from '../../src/app.module.js';
import { AppConfig, loadConfig } from '../../src/config/app-config.js';
import { configureApp } from '../../src/configure-app.js';
import { createTestDatabase } from './test-database.js';

export interface TestApp {
  app: INestApplication;
  /** The HTTP server, for supertest. */
  http: ReturnType<INestApplication['getHttpServer']>;
  config: AppConfig;
  /** Temp folder holding the SQLite file and the file store. */
  dir: string;
  storeDir: string;
  close(): Promise<void>;
}

/**
 * Boots the real AppModule on a temp SQLite file and temp store folder
 * (or on the given env, e.g. a PostgreSQL DATABASE_URL), configured exactly
 * as main.ts does.
 */
export async function createTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'glance-test-'));
  const storeDir = join(dir, 'images');
  const database = env.DATABASE_URL ? null : await createTestDatabase(dir);
  const config = loadConfig({
    DATABASE_URL: database?.url ?? env.DATABASE_URL,
    FILESYSTEM_STORE_DATADIR: storeDir,
    NOTIFICATION_DRIVER: 'noop',
    LOG_LEVEL: 'error',
    ...env,
  });
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
    .overrideProvider(AppConfig)
    .useValue(config)
    .compile();
  const app = moduleRef.createNestApplication({ bodyParser: false, logger: ['error', 'fatal'] });
  configureApp(app);
  await app.init();
  return {
    app,
    http: app.getHttpServer(),
    config,
    dir,
    storeDir,
    async close() {
      await app.close();
      await database?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Headers of a noauth caller: tenant + roles (no X-Roles would be an admin). */
export function as(tenant: string, roles = 'member', user = `${tenant}-user`): Record<string, string> {
  return { 'X-Tenant-Id': tenant, 'X-User-Id': user, 'X-Roles': roles };
}

export const ADMIN = { 'X-Roles': 'admin', 'X-Tenant-Id': 'admin-tenant', 'X-User-Id': 'admin-user' };
