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
