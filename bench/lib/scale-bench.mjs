// The scale phase (BENCH_PHASES=scale): list latency of every filter and sort
// key of GET /v1/images/detail at 1,000 and at BENCH_SEED_COUNT images (default
// 100,000), first page and a marker page from the middle of the listing, for an
// admin (is_public=None: every image) and a member tenant (public + own +
// shared). Seeded by bench/scale-seed.mjs through the service's migrations and
// entities; one fresh database per BENCH_SCALE_DATABASES entry.
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { run } from './children.mjs';
import { httpRequest } from './http-client.mjs';
import { readCpuSeconds } from './proc-stats.mjs';
import { ADMIN_TENANT, createdAt, MEMBER_TENANT, scaleImage } from './scale-dataset.mjs';
import { percentile, round } from './stats.mjs';

const GiB = 1024 ** 3;

/** Each query: its parameters and, to pick a marker, which images it lists. */
function scaleQueries(count) {
  const recent = createdAt(Math.floor(count * 0.99));
  const queries = [];
  for (const key of ['name', 'status', 'container_format', 'disk_format', 'size', 'id', 'created_at', 'updated_at'])
    for (const dir of ['asc', 'desc'])
      queries.push({ label: `sort_key=${key}&sort_dir=${dir}`, params: { sort_key: key, sort_dir: dir } });
  const f = (label, params, match) => queries.push({ label, params, match });
  f('name=image-77', { name: 'image-77' }, (i) => i.name === 'image-77');
  f('status=queued', { status: 'queued' }, (i) => i.status === 'queued');
  f('container_format=ovf', { container_format: 'ovf' }, (i) => i.containerFormat === 'ovf');
  f('disk_format=raw', { disk_format: 'raw' }, (i) => i.diskFormat === 'raw');
  f('disk_format=raw&sort_key=size', { disk_format: 'raw', sort_key: 'size' }, (i) => i.diskFormat === 'raw');
  const big = 10 * GiB - 50_000_000;
  f('size_min (0.5%)', { size_min: big }, (i) => i.size !== null && i.size >= big);
  f('size_max (0.5%)', { size_max: 50_000_000 }, (i) => i.size !== null && i.size <= 50_000_000);
  f('size_min&size_max', { size_min: GiB, size_max: 2 * GiB }, (i) => i.size !== null && i.size >= GiB && i.size <= 2 * GiB);
  f('min_ram=4096', { min_ram: 4096 }, (i) => i.minRam === 4096);
  f('min_disk=80', { min_disk: 80 }, (i) => i.minDisk === 80);
  f('is_public=True', { is_public: 'True' }, (i) => i.isPublic);
  f('is_public=False', { is_public: 'False' }, (i) => !i.isPublic);
  f('protected=True', { protected: 'True' }, (i) => i.protected);
  f('changes-since (last 1%)', { 'changes-since': recent }, (i) => i.updatedAt > recent, true);
  f('changes-since (all)', { 'changes-since': '2025-12-31T00:00:00' }, () => true, true);
  f('property-os_distro=fedora', { 'property-os_distro': 'fedora' }, (i) => i.properties.os_distro === 'fedora');
  f('property-build_id (1 image)', { 'property-build_id': 'b-77' }, (i) => i.properties.build_id === 'b-77');
  for (const q of queries) {
    q.match ??= () => true;
    q.includesDeleted = q.label.startsWith('changes-since');
  }
  return queries;
}

const CALLERS = {
  admin: { headers: { 'x-tenant-id': ADMIN_TENANT, 'x-roles': 'admin' }, extra: { is_public: 'None' }, sees: () => true },
  member: {
    headers: { 'x-tenant-id': MEMBER_TENANT, 'x-roles': 'member' },
    extra: {},
    sees: (i) => i.isPublic || i.owner === MEMBER_TENANT || i.members.includes(MEMBER_TENANT),
  },
};

/** A marker from the middle of what the query lists: an O(offset) page would show. */
function pickMarker(images, query, caller) {
  const hits = images.filter(
    (i) =>
      caller.sees(i) &&
      (query.includesDeleted || (!i.deleted && i.status !== 'killed')) &&
      query.match(i) &&
      // is_public=False for an admin lists only non-public images, as the filter says.
      (query.params.is_public === undefined || (query.params.is_public === 'True') === i.isPublic),
  );
  return hits[Math.floor(hits.length / 2)]?.id;
}

async function timeRequests({ port, agent, path, headers, warmup, requests }) {
  const times = [];
  let errors = 0;
  let last;
  for (let n = 0; n < warmup + requests; n++) {
    const t = performance.now();
    const r = await httpRequest({ port, path, headers, agent });
    const ms = performance.now() - t;
    if (r.status !== 200) errors++;
    last = r;
    if (n >= warmup) times.push(ms);
  }
  times.sort((a, b) => a - b);
  return {
    p50: round(percentile(times, 50), 3),
    p99: round(percentile(times, 99), 3),
    errors,
    images: last.status === 200 ? JSON.parse(last.body).images.length : null,
  };
}

async function adminDatabase(kind) {
  const name = `bench_scale_${randomBytes(4).toString('hex')}`;
  if (kind === 'sqlite') return { name, url: null, drop: async () => {} };
  const base =
    kind === 'postgres'
      ? process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
      : process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
  const admin = async (sql) => {
    const ds = new DataSource({ type: kind, url: base });
    await ds.initialize();
    try {
      await ds.query(sql);
    } finally {
      await ds.destroy();
    }
  };
  if (kind === 'postgres') {
    await admin(`CREATE SCHEMA ${name}`);
    return { url: `${base}?schema=${name}`, drop: () => admin(`DROP SCHEMA ${name} CASCADE`) };
  }
  await admin(`CREATE DATABASE ${name} CHARACTER SET utf8mb4`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE ${name}`) };
}

export async function runScaleBench({ root, runDir, serviceOptions, startService, config, log }) {
  const counts = [1000, config.scaleCount].filter((n, k, all) => all.indexOf(n) === k).sort((a, b) => a - b);
  const results = { counts, databases: {}, requestsPerQuery: config.scaleRequests };
  for (const kind of config.scaleDatabases) {
    const db = await adminDatabase(kind);
    const url = db.url ?? `sqlite:${join(runDir, `scale-${kind}.sqlite`)}`;
    const perDb = (results.databases[kind] = { seeding: [], byCount: {} });
    try {
      let seeded = 0;
      for (const count of counts) {
        log(`scale (${kind}): seeding images ${seeded}..${count} through the service's migrations and entities`);
        const r = await run(process.execPath, [join(root, 'bench/scale-seed.mjs'), url, String(seeded), String(count)], {
          cwd: root,
          timeoutMs: 1_800_000,
        });
        if (r.code !== 0) throw new Error(`scale-seed failed (${r.code}): ${r.stderr.slice(-2000)}`);
        perDb.seeding.push(JSON.parse(r.stdout.trim().split('\n').pop()));
        seeded = count;
        const images = Array.from({ length: count }, (_, i) => scaleImage(i));
        // A fresh start, as after a deploy: the service refreshes SQLite's statistics when it starts.
        // The list page cache is off so that every request times the query, not a kept page.
        const service = await startService({
          ...serviceOptions,
          databaseUrl: url,
          extraEnv: { ...serviceOptions.extraEnv, LIST_PAGE_CACHE_SIZE: '0' },
        });
        const agent = new Agent({ keepAlive: true, maxSockets: 1 });
        const rows = [];
        const cpu0 = readCpuSeconds(service.pid);
        let requests = 0;
        try {
          for (const query of scaleQueries(count)) {
            for (const [who, caller] of Object.entries(CALLERS)) {
              const params = { limit: '20', ...caller.extra, ...query.params };
              const first = `/v1/images/detail?${new URLSearchParams(params)}`;
              const marker = pickMarker(images, query, caller);
              const pages = { first };
              if (marker) pages.marker = `/v1/images/detail?${new URLSearchParams({ ...params, marker })}`;
              for (const [page, path] of Object.entries(pages)) {
                const t = await timeRequests({
                  port: service.port,
                  agent,
                  path,
                  headers: caller.headers,
                  warmup: 5,
                  requests: config.scaleRequests,
                });
                requests += 5 + config.scaleRequests;
                rows.push({ query: query.label, caller: who, page, ...t });
                service.assertAlive();
              }
            }
          }
        } finally {
          const cpu = readCpuSeconds(service.pid) - cpu0;
          agent.destroy();
          await service.stop();
          perDb.byCount[count] = { serviceCpuMsPerRequest: round((1000 * cpu) / requests, 3), rows };
        }
        const worst = rows.reduce((a, b) => (b.p50 > a.p50 ? b : a));
        log(
          `  ${kind} at ${count} images: ${rows.length} queries, worst p50 ${worst.p50} ms (${worst.query}, ${worst.caller}, ${worst.page}); ` +
            `service CPU ${perDb.byCount[count].serviceCpuMsPerRequest} ms/request; errors ${rows.reduce((n, r) => n + r.errors, 0)}`,
        );
      }
    } finally {
      await db.drop();
    }
  }
  return results;
}

/** One table per database: p50/p99 at each count, and the ratio of the largest to the smallest. */
export function printScale(scale, targets) {
  for (const [kind, perDb] of Object.entries(scale.databases)) {
    const [small, large] = [scale.counts[0], scale.counts[scale.counts.length - 1]];
    const a = perDb.byCount[small]?.rows ?? [];
    const b = perDb.byCount[large]?.rows ?? [];
    console.log(
      `\nscale phase, ${kind}: GET /v1/images/detail?limit=20, p50/p99 ms over ${scale.requestsPerQuery} sequential requests ` +
        `(service CPU ${perDb.byCount[small]?.serviceCpuMsPerRequest} ms/req at ${small}, ${perDb.byCount[large]?.serviceCpuMsPerRequest} at ${large})`,
    );
    console.log(
      `${'query'.padEnd(34)} ${'caller'.padEnd(6)} ${'page'.padEnd(6)} ${`${small}`.padStart(13)} ${`${large}`.padStart(13)}  ratio  ok`,
    );
    let failed = 0;
    for (const row of b) {
      const base = a.find((r) => r.query === row.query && r.caller === row.caller && r.page === row.page);
      const ratio = base ? row.p50 / base.p50 : NaN;
      const ok =
        row.errors === 0 &&
        (kind !== 'sqlite' || row.p50 < targets.scaleMaxP50Ms) &&
        (!base || ratio <= targets.scaleMaxRatio);
      if (!ok) failed++;
      const cell = (r) => (r ? `${r.p50.toFixed(2)}/${r.p99.toFixed(2)}`.padStart(13) : ''.padStart(13));
      console.log(
        `${row.query.padEnd(34)} ${row.caller.padEnd(6)} ${row.page.padEnd(6)} ${cell(base)} ${cell(row)}  ${ratio.toFixed(2).padStart(5)}  ${ok ? 'yes' : 'NO'}`,
      );
    }
    console.log(
      `${kind}: ${b.length - failed}/${b.length} within target (p50 < ${targets.scaleMaxP50Ms} ms on SQLite, <= ${targets.scaleMaxRatio}x the ${small}-image p50)`,
    );
  }
}
