// The "boot storm" phase: one 1 GiB image in the SAIO's Swift store,
// downloaded by 16 concurrent curl clients three ways in one run (no cache,
// cold cache, warm cache), plus 16 concurrent downloads of the same bytes
// from the file store as the yardstick for the warm cache.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { curlDownload, curlUpload } from './curl.mjs';
import { httpRequest } from './http-client.mjs';
import { readCpuSeconds, RssSampler } from './proc-stats.mjs';
import { startService } from './service.mjs';
import { MiB, round } from './stats.mjs';

const CLIENTS = 16;
const SAIO_DIR = process.env.GLANCE_TEST_SAIO_DIR ?? '/tmp/glance-test-saio';

/** The SAIO's settings; starts it (as the test global setup does) when it is not running. */
function saioEnv(root, log) {
  const script = resolve(root, '../shared/services/swift-saio.sh');
  {
    if (!existsSync(script)) throw new Error(`boot storm needs Swift: ${script} is missing`);
    log('boot storm: making sure the Swift SAIO runs');
    execFileSync('flock', ['-o', `${SAIO_DIR}.lock`, 'bash', script, 'start', SAIO_DIR], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  const env = {};
  for (const line of readFileSync(`${SAIO_DIR}/env`, 'utf8').split('\n')) {
    const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2].replace(/^'(.*)'$/, '$1');
  }
  return env;
}

/** Bytes the process read through syscalls (sockets and files): /proc/PID/io rchar. */
function readChars(pid) {
  try {
    return Number(/^rchar:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))[1]);
  } catch {
    return NaN;
  }
}

async function metric(port, name) {
  const res = await httpRequest({ port, path: '/metrics' });
  const line = res.body.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

async function upload(service, input, store, runDir) {
  const r = await curlUpload({
    url: `http://127.0.0.1:${service.port}/v1/images`,
    file: input.path,
    headers: [
      'x-image-meta-name: boot-storm',
      'x-image-meta-disk_format: raw',
      'x-image-meta-container_format: bare',
      'x-image-meta-is_public: true',
      `x-image-meta-store: ${store}`,
    ],
    responseFile: join(runDir, `storm-upload-${store}.json`),
  });
  if (r.status !== 201) throw new Error(`boot storm: upload to ${store} answered ${r.status}: ${r.body}`);
  return JSON.parse(r.body).image.id;
}

/** 16 curl clients at once; aggregate rate, service CPU and peak RSS. */
async function storm(service, id, input, label, log) {
  const sampler = new RssSampler({ service: service.pid }).start();
  const cpu0 = readCpuSeconds(service.pid);
  const chars0 = readChars(service.pid);
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: CLIENTS }, () => curlDownload({ url: `http://127.0.0.1:${service.port}/v1/images/${id}` })),
  );
  const seconds = (performance.now() - started) / 1000;
  const memory = sampler.stop().processes.service;
  const cpu = readCpuSeconds(service.pid) - cpu0;
  const bad = results.filter((r) => r.status !== 200 || r.bytes !== input.size);
  if (bad.length > 0) throw new Error(`boot storm ${label}: ${bad.length} of ${CLIENTS} downloads failed: ${JSON.stringify(bad[0])}`);
  const bytes = CLIENTS * input.size;
  const row = {
    label,
    clients: CLIENTS,
    seconds: round(seconds, 2),
    aggregateMBps: round(bytes / seconds / 1e6, 1),
    slowestClientSeconds: round(Math.max(...results.map((r) => r.seconds)), 2),
    peakRssMiB: Math.max(memory.peakRssMiB, memory.hwmMiB ?? 0),
    serviceCpuSeconds: round(cpu, 2),
    cpuSecondsPerGiBSent: round(cpu / (bytes / (1024 * MiB)), 3),
    serviceReadMiB: round((readChars(service.pid) - chars0) / MiB, 1),
  };
  log(
    `boot storm ${label}: ${row.aggregateMBps} MB/s aggregate over ${CLIENTS} clients in ${row.seconds} s, ` +
      `peak RSS ${row.peakRssMiB} MiB, service CPU ${row.serviceCpuSeconds} s (${row.cpuSecondsPerGiBSent} s/GiB sent)`,
  );
  return row;
}

export async function runBootStorm({ root, runDir, serviceOptions, input, log }) {
  const swift = saioEnv(root, log);
  const container = `bench-storm-${Date.now()}`;
  const stormDir = join(runDir, 'storm');
  mkdirSync(stormDir, { recursive: true });
  const baseEnv = {
    SWIFT_STORE_AUTH_URL: swift.SWIFT_AUTH_URL,
    SWIFT_STORE_USER: swift.SWIFT_USER,
    SWIFT_STORE_KEY: swift.SWIFT_KEY,
    SWIFT_STORE_CONTAINER: container,
  };
  const options = { ...serviceOptions, runDir: stormDir, logPath: join(runDir, 'storm-service.log') };
  const report = { image: { size: input.size, md5: input.md5 }, clients: CLIENTS, rows: [] };

  // 1. No cache: every client streams from Swift.
  let service = await startService({ ...options, extraEnv: { ...baseEnv, DEFAULT_STORE: 'swift' } });
  let swiftId;
  let fileId;
  try {
    log(`boot storm: uploading ${input.size / MiB} MiB to Swift and to the file store`);
    swiftId = await upload(service, input, 'swift', stormDir);
    fileId = await upload(service, input, 'file', stormDir);
    const noCache = await storm(service, swiftId, input, 'no cache (Swift)', log);
    noCache.backendMiB = round(noCache.serviceReadMiB, 1);
    noCache.backendNote = 'rchar of the service (all of it from Swift sockets)';
    report.rows.push(noCache);
    const file = await storm(service, fileId, input, 'file store, no cache', log);
    file.backendMiB = round(file.serviceReadMiB, 1);
    report.rows.push(file);
  } finally {
    await service.stop();
  }

  // 2. Same database and store, now with a cache: cold, then warm.
  const cacheDir = join(stormDir, 'cache');
  service = await startService({
    ...options,
    extraEnv: { ...baseEnv, DEFAULT_STORE: 'swift', IMAGE_CACHE_DIR: cacheDir, IMAGE_CACHE_MAX_SIZE: String(4 * 1024 * MiB) },
  });
  try {
    for (const label of ['cold cache (Swift)', 'warm cache (Swift)']) {
      const before = await metric(service.port, 'glance_image_cache_backend_bytes_total');
      const row = await storm(service, swiftId, input, label, log);
      row.backendMiB = round((await metric(service.port, 'glance_image_cache_backend_bytes_total') - before) / MiB, 1);
      row.backendNote = 'glance_image_cache_backend_bytes_total';
      report.rows.push(row);
    }
    await httpRequest({ port: service.port, method: 'DELETE', path: `/v1/images/${swiftId}` });
    await httpRequest({ port: service.port, method: 'DELETE', path: `/v1/images/${fileId}` });
  } finally {
    await service.stop();
  }

  const by = (label) => report.rows.find((r) => r.label.startsWith(label));
  const sizeMiB = input.size / MiB;
  report.targets = {
    coldReadsBackendOnce: by('cold').backendMiB === sizeMiB,
    warmAtLeastFileStore: by('warm').aggregateMBps >= by('file').aggregateMBps,
    // The three ways are judged; the file-store row is the yardstick only.
    peakRssUnder150MiB: ['no cache', 'cold', 'warm'].every((l) => by(l).peakRssMiB < 150),
  };
  console.log('\nboot storm (16 concurrent curl clients, 1 image):');
  console.log('  way                     MB/s agg  seconds  backend MiB  peak RSS MiB  CPU s/GiB');
  for (const r of report.rows) {
    console.log(
      `  ${r.label.padEnd(22)} ${String(r.aggregateMBps).padStart(9)} ${String(r.seconds).padStart(8)} ${String(r.backendMiB).padStart(12)} ${String(r.peakRssMiB).padStart(13)} ${String(r.cpuSecondsPerGiBSent).padStart(10)}`,
    );
  }
  console.log(`  targets: ${JSON.stringify(report.targets)}`);
  return report;
}
