// Ad-hoc profiler of the hot metadata read paths (not part of `npm run bench`):
// starts the built service on a seeded SQLite file (kept in bench/.work/hot-paths
// between runs, seeded once with HOT_SEED_COUNT reserve-only images and 200
// active empty ones), loads each endpoint and prints CPU per request; with
// HOT_PROFILE=1 a separate profiled pass per endpoint.
//   flock /tmp/bench.lock node bench/hot-paths.mjs [list,brief,head,get,floor]
//   HOT_SECONDS (default 8) per endpoint; HOT_ROOT=<checkout with dist/> to run another build
import { mkdirSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { join, resolve } from 'node:path';
import { installExitHandlers, cleanupSync } from './lib/children.mjs';
import { httpRequest } from './lib/http-client.mjs';
import { runLoad, seedImages } from './lib/metadata-bench.mjs';
import { ensureBuilt, startService } from './lib/service.mjs';

const BENCH_DIR = import.meta.dirname;
// HOT_ROOT: another checkout's built dist/ (A/B runs against the same data).
const ROOT = resolve(process.env.HOT_ROOT ?? resolve(BENCH_DIR, '..'));
const dir = join(BENCH_DIR, '.work', 'hot-paths');
const profileDir = join(dir, 'profiles');
mkdirSync(profileDir, { recursive: true });
const log = (m) => console.log(m);
installExitHandlers();
if (!process.env.HOT_ROOT) await ensureBuilt(ROOT, log);
const service = await startService({
  root: ROOT,
  runDir: dir,
  logPath: join(dir, 'service.log'),
  profileDir,
  hookPath: join(BENCH_DIR, 'cpu-profile.hook.mjs'),
  imageSizeCap: 1 << 30,
  log,
});
const idsFile = join(dir, 'ids.json');
const activeFile = join(dir, 'active.json');
if (!existsSync(idsFile)) {
  const seeded = await seedImages({
    port: service.port,
    count: Number(process.env.HOT_SEED_COUNT ?? 10000),
    concurrency: 16,
    log,
  });
  writeFileSync(idsFile, JSON.stringify(seeded.ids));
  const agent = new Agent({ keepAlive: true });
  const active = [];
  for (let i = 0; i < 200; i++) {
    const r = await httpRequest({
      port: service.port,
      method: 'POST',
      path: '/v1/images',
      agent,
      headers: {
        'Content-Length': '0',
        'x-image-meta-name': `hot-active-${i}`,
        'x-image-meta-disk_format': 'raw',
        'x-image-meta-container_format': 'bare',
        'x-image-meta-is_public': 'True',
        'x-image-meta-size': '0',
        'x-image-meta-property-os_distro': 'ubuntu',
      },
    });
    active.push(JSON.parse(r.body).image.id);
  }
  agent.destroy();
  writeFileSync(activeFile, JSON.stringify(active));
}
const ENDPOINTS = {
  list: { label: 'GET /v1/images/detail?limit=20', method: 'GET', path: '/v1/images/detail?limit=20' },
  brief: { label: 'GET /v1/images', method: 'GET', path: '/v1/images' },
  head: { label: 'HEAD /v1/images/{id}', method: 'HEAD', ids: idsFile },
  get: { label: 'GET /v1/images/{active empty id}', method: 'GET', ids: activeFile },
  // The floor under every route: the same middleware chain, no registry, a 300 with a tiny body.
  floor: { label: 'GET /v1 (versions, no registry)', method: 'GET', path: '/v1' },
};
const wanted = (process.argv[2] ?? 'list,brief,head,get').split(',');
const seconds = Number(process.env.HOT_SECONDS ?? 8);
const results = {};
for (const key of wanted) {
  const e = ENDPOINTS[key];
  const opts = {
    modulePath: join(BENCH_DIR, 'load-generator.mjs'),
    service,
    endpoint: e,
    idsFile: e.ids,
    connections: 16,
  };
  const r = await runLoad({ ...opts, warmupSeconds: 2, durationSeconds: seconds });
  results[key] = r;
  log(
    `${e.label.padEnd(36)} ${String(r.serviceCpuMsPerRequest).padStart(6)} ms CPU/req  ${r.requestsPerSecond} req/s  ` +
      `p50 ${r.latencyMs.p50} p99 ${r.latencyMs.p99} ms  non-2xx ${r.non2xx}  gen ${r.generatorCpuPercent}%  other ${r.otherCpuPercent}%`,
  );
  if (process.env.HOT_PROFILE === '1') {
    const p = await runLoad({ ...opts, warmupSeconds: 1, durationSeconds: 5, profileDir });
    results[`${key}-profile`] = p.profile;
    const show = (title, rows) =>
      log(`  ${title}:\n${rows.map((x) => `    ${String(x.pctOfBusy).padStart(5)}% ${x.name}`).join('\n')}`);
    show('self by function', p.profile.topSelfFunctions.slice(0, 25));
    show('self by area', p.profile.selfByCategory);
    show('inclusive service functions', p.profile.inclusiveServiceFunctions);
  }
}
writeFileSync(join(dir, 'last.json'), JSON.stringify(results, null, 2));
await service.stop();
cleanupSync();
