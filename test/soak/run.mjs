// `npm run soak -- --minutes N [--clients C]`: the mixed load of
// soak-load.mjs against the built service (dist/, `npm run build` first) on
// SQLite, or on DATABASE_URL when set; exits 1 on any violated invariant.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkInvariants, runLoad } from './soak-load.mjs';
import { startServer } from './server.mjs';

const { values } = parseArgs({
  options: { minutes: { type: 'string', default: '1' }, clients: { type: 'string', default: '12' } },
});
const minutes = Number(values.minutes);
const clients = Number(values.clients);
if (!(minutes > 0) || !(clients > 0)) throw new Error('--minutes and --clients must be positive numbers');
const root = resolve(import.meta.dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'glance-soak-'));
const storeDir = join(work, 'images');
const server = await startServer({
  mainJs: join(root, 'dist/src/main.js'),
  cwd: root,
  env: {
    DATABASE_URL: process.env.DATABASE_URL ?? `sqlite:${join(work, 'glance.sqlite')}`,
    FILESYSTEM_STORE_DATADIR: storeDir,
    LOG_LEVEL: 'warn',
  },
});
let failed = true;
try {
  console.log(`soak: ${clients} clients for ${minutes} min against pid ${server.pid} on port ${server.port}`);
  const state = await runLoad({ port: server.port, seconds: minutes * 60, clients, log: console.log });
  const violations = await checkInvariants({ port: server.port, storeDir, state });
  console.log(`${state.images.size} images checked, ${violations.length} violation(s)`);
  // By kind (ids and numbers folded), then the first few in full.
  const kinds = new Map();
  for (const v of violations) {
    const kind = v.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>').replace(/\d+/g, 'N');
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  for (const [kind, n] of kinds) console.log(`  ${n} x ${kind.slice(0, 200)}`);
  for (const v of violations.slice(0, 20)) console.log(`  ${v}`);
  failed = violations.length > 0;
} finally {
  const { code, signal } = await server.stop();
  if (code !== 0 && signal !== 'SIGTERM') console.log(`service exited with ${code ?? signal}:\n${server.output().slice(-3000)}`);
  rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
