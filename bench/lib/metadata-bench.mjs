import { writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { forkHelper, stopChild, waitForMessage } from './children.mjs';
import { httpRequest } from './http-client.mjs';
import { ProfileWindow, shouldProfile } from './profile-window.mjs';
import {
  processTree,
  readCpuSeconds,
  readMachineCpu,
  RssSampler,
} from './proc-stats.mjs';
import { round } from './stats.mjs';

export const ENDPOINTS = [
  {
    key: 'list',
    label: 'GET /v1/images/detail?limit=20',
    method: 'GET',
    path: '/v1/images/detail?limit=20',
  },
  { key: 'head', label: 'HEAD /v1/images/{random id}', method: 'HEAD' },
];

/** Reserve-only POSTs (no body), `concurrency` in flight over keep-alive sockets. */
export async function seedImages({ port, count, concurrency, log }) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const ids = Array.from({ length: count });
  const failures = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < count) {
      const i = next++;
      try {
        const r = await httpRequest({
          port,
          method: 'POST',
          path: '/v1/images',
          agent,
          headers: {
            'Content-Length': '0',
            'x-image-meta-name': `bench-seed-${i}`,
            'x-image-meta-disk_format': 'raw',
            'x-image-meta-container_format': 'bare',
            'x-image-meta-is_public': 'True',
            'x-image-meta-min_ram': '512',
            'x-image-meta-property-os_distro': 'ubuntu',
            'x-image-meta-property-architecture': 'x86_64',
            'x-image-meta-property-bench_index': String(i),
          },
        });
        if (r.status !== 201)
          throw new Error(`HTTP ${r.status} ${r.body.slice(0, 200)}`);
        ids[i] = JSON.parse(r.body).image.id;
      } catch (err) {
        failures.push(`#${i}: ${err.message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  const seconds = (performance.now() - started) / 1000;
  log(
    `seeded ${count - failures.length}/${count} images in ${seconds.toFixed(1)} s (${Math.round(count / seconds)}/s)`,
  );
  return {
    result: {
      count,
      created: count - failures.length,
      concurrency,
      seconds: round(seconds, 2),
      imagesPerSecond: round(count / seconds, 0),
      failures: failures.slice(0, 10),
    },
    ids: ids.filter(Boolean),
  };
}

/** Checks once that both endpoints answer as expected before loading them. */
export async function sanityCheck(port, ids) {
  const list = await httpRequest({ port, path: ENDPOINTS[0].path });
  const images = JSON.parse(list.body).images ?? [];
  if (list.status !== 200 || images.length !== 20) {
    throw new Error(
      `list check: HTTP ${list.status}, ${images.length} images (want 20)`,
    );
  }
  const head = await httpRequest({
    port,
    method: 'HEAD',
    path: `/v1/images/${ids[0]}`,
  });
  if (head.status !== 200 || head.headers['x-image-meta-id'] !== ids[0]) {
    throw new Error(`HEAD check: HTTP ${head.status}`);
  }
}

/**
 * One closed-loop run in a separate process. Service CPU, machine CPU and
 * service RSS are taken over the measurement window only; with `profileDir`,
 * the service's CPU profiler runs over that window too.
 */
export async function runLoad({
  modulePath,
  service,
  endpoint,
  idsFile,
  connections,
  warmupSeconds,
  durationSeconds,
  profileDir,
}) {
  const config = {
    port: service.port,
    method: endpoint.method,
    path: endpoint.path,
    idsFile: endpoint.path ? undefined : idsFile,
    connections,
    warmupSeconds,
    durationSeconds,
  };
  const gen = forkHelper(modulePath, [JSON.stringify(config)]);
  const timeoutMs = (warmupSeconds + durationSeconds + 60) * 1000;
  const cpu = {};
  const window = profileDir ? new ProfileWindow(service, profileDir) : null;
  let sampler;
  let profile = Promise.resolve(null);
  gen.on('message', (m) => {
    if (m?.type === 'measure-start') {
      // WORKERS > 1: the primary and every worker count as the service.
      cpu.pids = processTree(service.pid);
      cpu.service = serviceCpu(cpu.pids);
      cpu.primaryStart = readCpuSeconds(service.pid);
      cpu.generator = readCpuSeconds(gen.pid);
      cpu.machine = readMachineCpu().busySeconds;
      sampler = new RssSampler(
        Object.fromEntries(
          cpu.pids.map((pid, i) => [i === 0 ? 'service' : `worker${i}`, pid]),
        ),
      ).start();
      window?.start();
    } else if (m?.type === 'measure-end') {
      cpu.service = serviceCpu(cpu.pids) - cpu.service;
      cpu.primary = readCpuSeconds(service.pid) - cpu.primaryStart;
      cpu.generator = readCpuSeconds(gen.pid) - cpu.generator;
      cpu.machine = readMachineCpu().busySeconds - cpu.machine;
      const { service: primaryRss, ...workerRss } = sampler.stop().processes;
      cpu.rss = primaryRss;
      cpu.workerRss = workerRss;
      if (window) profile = window.stop();
    }
  });
  let result;
  try {
    result = await waitForMessage(gen, (m) => m?.type === 'result', timeoutMs);
  } finally {
    await stopChild(gen, 2000);
  }
  delete result.type;
  const lat = Object.fromEntries(
    Object.entries(result.latencyMs).map(([k, v]) => [k, round(v, 3)]),
  );
  const perSecond = (seconds) => round((100 * seconds) / result.seconds, 1);
  return {
    endpoint: endpoint.label,
    connections,
    warmupSeconds,
    ...result,
    requestsPerSecond: round(result.requestsPerSecond, 1),
    latencyMs: lat,
    serviceCpuPercent: perSecond(cpu.service),
    serviceCpuMsPerRequest: round((1000 * cpu.service) / result.requests, 3),
    // WORKERS > 1: the primary's share (it only supervises and answers IPC).
    primaryCpuPercent: cpu.pids.length > 1 ? perSecond(cpu.primary) : undefined,
    generatorCpuPercent: perSecond(cpu.generator),
    // Everything else on the machine (other builds/tests): large values mean a noisy run.
    otherCpuPercent: perSecond(cpu.machine - cpu.service - cpu.generator),
    serviceRss: cpu.rss,
    // Peak RSS of each worker (WORKERS > 1; serviceRss is then the primary's).
    workerRss: cpu.workerRss,
    profile: await profile,
  };
}

const serviceCpu = (pids) =>
  pids.reduce((sum, pid) => sum + (readCpuSeconds(pid) || 0), 0);

function describe(r) {
  return (
    `${r.requestsPerSecond} req/s  p50 ${r.latencyMs.p50} ms  p99 ${r.latencyMs.p99} ms  ` +
    `max ${r.latencyMs.max} ms  non-2xx ${r.non2xx}  errors ${r.errors}  ` +
    `service CPU ${r.serviceCpuPercent}% (${r.serviceCpuMsPerRequest} ms/req)  ` +
    `generator CPU ${r.generatorCpuPercent}%  other processes ${r.otherCpuPercent}%`
  );
}

export async function runMetadataBench({
  service,
  runDir,
  profileDir,
  config,
  targets,
  log,
  genPath,
  reuse,
  bareServerPath,
}) {
  // `reuse`: the images another service seeded into the same database (WORKERS=2 pass).
  const seeded = reuse ?? await seedImages({
    port: service.port,
    count: config.seedCount,
    concurrency: config.seedConcurrency,
    log,
  });
  service.assertAlive();
  if (seeded.result.created !== seeded.result.count) {
    throw new Error(`seeding failed: ${seeded.result.failures.join('; ')}`);
  }
  const idsFile = join(runDir, 'ids.json');
  writeFileSync(idsFile, JSON.stringify(seeded.ids));
  await sanityCheck(service.port, seeded.ids);

  const loadOptions = (endpoint) => ({
    modulePath: genPath,
    service,
    endpoint,
    idsFile,
    connections: config.connections,
  });
  const load = {};
  for (const endpoint of ENDPOINTS) {
    log(
      `load: ${endpoint.label}, ${config.connections} keep-alive connections, ` +
        `${config.warmupSeconds}s warm-up + ${config.loadSeconds}s`,
    );
    const r = await runLoad({
      ...loadOptions(endpoint),
      warmupSeconds: config.warmupSeconds,
      durationSeconds: config.loadSeconds,
    });
    service.assertAlive();
    delete r.profile;
    load[endpoint.key] = r;
    log(`  ${describe(r)}`);
  }

  // Profile only when asked, or when a target was missed (a separate, shorter pass,
  // so the profiler's overhead never touches the measured numbers).
  const profiles = {};
  for (const endpoint of ENDPOINTS) {
    const r = load[endpoint.key];
    const missed =
      r.requestsPerSecond < targets.minRequestsPerSecond ||
      r.latencyMs.p99 >= targets.maxP99Ms;
    if (!shouldProfile(config, missed)) continue;
    log(`profiling the service during ${endpoint.label} (5 s, separate pass)`);
    const profiled = await runLoad({
      ...loadOptions(endpoint),
      warmupSeconds: 1,
      durationSeconds: 5,
      profileDir,
    });
    service.assertAlive();
    if (!profiled.profile) {
      log('  (no profile was written)');
      continue;
    }
    profiles[endpoint.key] = {
      what: `${endpoint.label}, ${profiled.requestsPerSecond} req/s while profiling`,
      ...profiled.profile,
    };
  }
  const bare = bareServerPath
    ? await runBareYardstick({ bareServerPath, service, runDir, idsFile, ids: seeded.ids, loadOptions, config, log })
    : undefined;
  return { seed: seeded.result, load, bare, profiles, ids: seeded.ids };
}

/** Response headers a bare server can send again as they are. */
function replayable(headers, body) {
  const kept = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!['date', 'connection', 'keep-alive', 'transfer-encoding', 'content-length'].includes(name)) kept[name] = value;
  }
  kept['content-length'] = String(Buffer.byteLength(body));
  return kept;
}

/**
 * The yardstick of the metadata figures: a bare node:http server sending the
 * service's own answers (the same list body, the same HEAD headers), loaded
 * the same way. The service's CPU per request over this one's is the price
 * of everything the service does, on whatever day the machine has.
 */
async function runBareYardstick({ bareServerPath, service, runDir, ids, loadOptions, config, log }) {
  const list = await httpRequest({ port: service.port, path: ENDPOINTS[0].path });
  const head = await httpRequest({ port: service.port, method: 'HEAD', path: `/v1/images/${ids[0]}` });
  const file = join(runDir, 'bare-meta.json');
  writeFileSync(
    file,
    JSON.stringify({
      list: { headers: replayable(list.headers, list.body), body: list.body },
      head: { headers: replayable(head.headers, '') },
    }),
  );
  const child = forkHelper(bareServerPath, ['meta', file]);
  try {
    const { port } = await waitForMessage(child, (m) => typeof m?.port === 'number', 10_000);
    const bare = { port, pid: child.pid, assertAlive() {} };
    const load = {};
    for (const endpoint of ENDPOINTS) {
      const r = await runLoad({
        ...loadOptions(endpoint),
        service: bare,
        warmupSeconds: config.warmupSeconds,
        durationSeconds: config.loadSeconds,
      });
      delete r.profile;
      load[endpoint.key] = r;
      log(`  bare node:http, same answers, ${endpoint.label}: ${describe(r)}`);
    }
    return load;
  } finally {
    await stopChild(child, 2000);
  }
}
