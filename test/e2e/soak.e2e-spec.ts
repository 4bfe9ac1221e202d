import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, TEST_DATABASE, type TestDatabase } from '../support/test-database.js';
import { transpileServer } from '../support/transpile-server.js';
import { checkInvariants, runLoad } from '../soak/soak-load.mjs';
import { startServer } from '../soak/server.mjs';

const LOAD_SECONDS = 10;

// The mixed load found its defects on PostgreSQL and SQLite (issue 12); a
// third run on MariaDB would cost the suite budget for little more.
describe.runIf(TEST_DATABASE !== 'mysql')(
  `soak: ${LOAD_SECONDS} s of mixed load against a server process (${TEST_DATABASE})`,
  () => {
    let work: string;
    let mainJs: string;
    let database: TestDatabase;

    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), 'glance-soak-'));
      // A private build (file by file, no type check): `nest build` would wipe the dist/ others use.
      mainJs = transpileServer(join(work, 'build'));
      database = await createTestDatabase(work);
    }, 180_000);

    afterAll(async () => {
      await database?.drop();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    it('keeps every invariant: states, bytes, store folder, no 5xx, no cross-tenant answer', async () => {
      const storeDir = join(work, 'images');
      const server = await startServer({
        mainJs,
        cwd: work,
        env: { DATABASE_URL: database.url, FILESYSTEM_STORE_DATADIR: storeDir, LOG_LEVEL: 'error' },
      });
      try {
        const state = await runLoad({ port: server.port, seconds: LOAD_SECONDS, clients: 12, maxBytes: 2 * 1024 * 1024 });
        expect(state.requests).toBeGreaterThan(200);
        const violations = await checkInvariants({ port: server.port, storeDir, state });
        expect(violations).toEqual([]);
      } finally {
        await server.stop();
      }
    }, 120_000);
  },
);
