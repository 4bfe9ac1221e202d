import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * Vitest global setup: the swift and s3 store tests need a real object
 * store. When the environment does not already point at one (SWIFT_AUTH_URL),
 * start the workplace's single-node Swift (../shared/services/swift-saio.sh)
 * if it is not running yet, and export its settings to the test workers.
 * It is left running for the next test run (like the databases); stop it with
 * `npm run services:stop`. A lock serialises concurrent test runs' starts.
 */
export const SAIO_SCRIPT = resolve(import.meta.dirname, '../../../shared/services/swift-saio.sh');
export const SAIO_DIR = process.env.GLANCE_TEST_SAIO_DIR ?? '/tmp/glance-test-saio';

export default function setup(): void {
  startKeystone();
  startSaio();
}

function startSaio(): void {
  if (process.env.SWIFT_AUTH_URL) return;
  if (!existsSync(SAIO_SCRIPT)) {
    throw new Error(
      `Swift/S3 tests need an object store: set SWIFT_AUTH_URL etc. (see README) or provide ${SAIO_SCRIPT}`,
    );
  }
  execFileSync('flock', ['-o', `${SAIO_DIR}.lock`, 'bash', SAIO_SCRIPT, 'start', SAIO_DIR], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (const line of readFileSync(`${SAIO_DIR}/env`, 'utf8').split('\n')) {
    const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) process.env[m[1]] = m[2].replace(/^'(.*)'$/, '$1');
  }
}

export const KEYSTONE_SCRIPT = resolve(
  import.meta.dirname,
  '../../../shared/services/keystone.sh',
);
export const KEYSTONE_DIR =
  process.env.GLANCE_TEST_KEYSTONE_DIR ?? '/tmp/glance-test-keystone';
/** Ports of the test Keystone and of the image endpoint in its catalog (the test app listens there). */
export const KEYSTONE_PORT = process.env.GLANCE_TEST_KEYSTONE_PORT ?? '15000';
export const KEYSTONE_IMAGE_PORT =
  process.env.GLANCE_TEST_KEYSTONE_IMAGE_PORT ?? '19292';

/**
 * The real-Keystone tests (test/e2e/keystone-real.e2e-spec.ts) run on SQLite
 * only, so only that run starts Debian's Keystone (../shared/services/keystone.sh,
 * installing its packages the first time). Like the SAIO it is left running;
 * `npm run services:stop` stops it. Its env file's path goes to the workers
 * as TEST_KEYSTONE_ENV (its variable names would otherwise leak into the
 * service's own KEYSTONE_* configuration).
 */
function startKeystone(): void {
  if (
    (process.env.TEST_DATABASE ?? 'sqlite') !== 'sqlite' ||
    process.env.TEST_KEYSTONE_ENV
  )
    return;
  if (!existsSync(KEYSTONE_SCRIPT)) {
    throw new Error(
      `the real-Keystone tests need ${KEYSTONE_SCRIPT} (or TEST_KEYSTONE_ENV)`,
    );
  }
  execFileSync(
    'flock',
    [
      '-o',
      `${KEYSTONE_DIR}.lock`,
      'bash',
      KEYSTONE_SCRIPT,
      'start',
      KEYSTONE_DIR,
    ],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        ...process.env,
        KEYSTONE_PORT,
        KEYSTONE_IMAGE_ENDPOINT: `http://127.0.0.1:${KEYSTONE_IMAGE_PORT}`,
      },
    },
  );
  process.env.TEST_KEYSTONE_ENV = `${KEYSTONE_DIR}/env`;
}
