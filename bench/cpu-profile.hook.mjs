// Preloaded into the service (node --import) by run.mjs. Inert until the
// process gets SIGWINCH: the first starts the V8 CPU profiler, the next stops
// it and writes profile-<n>.cpuprofile into BENCH_CPU_PROF_DIR, so the bench
// can profile one chosen window (e.g. the list load) rather than the whole
// lifetime --cpu-prof covers. Not SIGUSR2: Nest's shutdown hooks exit on it;
// SIGWINCH is ignored by default, so a stray one is harmless.
import { writeFileSync, renameSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.BENCH_CPU_PROF_DIR;
let session;
let profiling = false;
let seq = 0;

function post(method, params = {}) {
  return new Promise((resolve, reject) =>
    session.post(method, params, (err, result) =>
      err ? reject(err) : resolve(result),
    ),
  );
}

async function toggle() {
  if (!session) {
    session = new Session();
    session.connect();
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: 200 });
  }
  if (!profiling) {
    profiling = true;
    await post('Profiler.start');
    return;
  }
  profiling = false;
  const { profile } = await post('Profiler.stop');
  const file = join(dir, `profile-${seq++}.cpuprofile`);
  writeFileSync(`${file}.tmp`, JSON.stringify(profile));
  renameSync(`${file}.tmp`, file);
}

if (dir) {
  process.on('SIGWINCH', () => {
    toggle().catch((err) => console.error('cpu-profile hook:', err));
  });
}
