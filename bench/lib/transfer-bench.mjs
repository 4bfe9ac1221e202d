import { cpus } from 'node:os';
import { join } from 'node:path';
import { forkHelper, stopChild, waitForMessage } from './children.mjs';
import { curlDownload, curlUpload } from './curl.mjs';
import { downloadDigest, httpRequest } from './http-client.mjs';
import { profileDuring, shouldProfile } from './profile-window.mjs';
import { readCpuSeconds, readMachineCpu, RssSampler } from './proc-stats.mjs';
import { formatRate, median, MiB, round } from './stats.mjs';

export const DOWNLOAD_VARIANTS = [
  {
    key: 'stream-64k',
    label: 'createReadStream hwm 64 KiB',
    args: ['stream', 65536],
  },
  {
    key: 'stream-1m',
    label: 'createReadStream hwm 1 MiB',
    args: ['stream', MiB],
  },
  {
    key: 'manual-1m',
    label: 'fh.read 4x1 MiB reused bufs + res.write',
    args: ['manual', MiB, 4],
  },
  {
    key: 'manual-256k-cork',
    label: 'fh.read 8x256 KiB reused bufs, cork/uncork batches',
    args: ['manual', 256 * 1024, 8, 'cork'],
  },
];

const UPLOAD_BASELINES = [
  { key: 'receive-only', label: 'bare receive-only (discard)', mode: ['sink'] },
  {
    key: 'naive',
    label: 'bare naive (file + md5/sha512 on main thread)',
    mode: ['naive'],
  },
];

class BenchFailure extends Error {}

/** Forks one bare node:http server per baseline so each has its own CPU/RSS. */
export async function startBareServers(modulePath, scratchDir) {
  const servers = {};
  const specs = [
    ...UPLOAD_BASELINES.map((b) => ({
      key: b.key,
      args: b.key === 'naive' ? [...b.mode, scratchDir] : b.mode,
    })),
    ...DOWNLOAD_VARIANTS.map((v) => ({ key: v.key, args: v.args.map(String) })),
  ];
  for (const spec of specs) {
    const child = forkHelper(modulePath, spec.args);
    const { port } = await waitForMessage(
      child,
      (m) => typeof m?.port === 'number',
      10_000,
    );
    servers[spec.key] = { child, pid: child.pid, port };
  }
  return servers;
}

export async function stopBareServers(servers) {
  await Promise.all(
    Object.values(servers).map((s) => stopChild(s.child, 2000)),
  );
}

function uploadHeaders(name) {
  return [
    `x-image-meta-name: ${name}`,
    'x-image-meta-disk_format: raw',
    'x-image-meta-container_format: bare',
    'x-image-meta-is_public: True',
  ];
}

/** Runs `fn` and returns its result plus the CPU seconds `pid` used meanwhile. */
async function withCpu(pid, fn) {
  const before = readCpuSeconds(pid);
  const machineBefore = readMachineCpu().busySeconds;
  const started = performance.now();
  const result = await fn();
  return {
    ...result,
    cpuSeconds: round(readCpuSeconds(pid) - before, 3),
    machineCpuSeconds: round(readMachineCpu().busySeconds - machineBefore, 3),
    wallSeconds: round((performance.now() - started) / 1000, 3),
  };
}

function rateOf(size, r) {
  return size / r.seconds;
}

function summarize(size, runs) {
  const rates = runs.map((r) => r.bytesPerSecond);
  const med = median(rates);
  return {
    medianBytesPerSecond: Math.round(med),
    medianMBps: round(med / 1e6, 1),
    medianMiBps: round(med / MiB, 1),
    medianCpuSecondsPerGB: round(
      median(runs.map((r) => r.cpuSeconds)) / (size / 1e9),
      3,
    ),
    runs,
  };
}

/** curl upload to the service, checked: 201, active, size and md5 as the file. */
async function serviceUpload({ service, input, name, responseFile }) {
  const { size, path: file, md5 } = input;
  const r = await withCpu(service.pid, () =>
    curlUpload({
      url: `http://127.0.0.1:${service.port}/v1/images`,
      file,
      headers: uploadHeaders(name),
      responseFile,
    }),
  );
  const image = parseJson(r.body)?.image;
  if (r.status !== 201 || !image) {
    throw new BenchFailure(
      `service upload ${name} failed: HTTP ${r.status} curl exit ${r.curlExit} ${r.stderr} ${r.body.slice(0, 500)}`,
    );
  }
  if (
    image.checksum !== md5 ||
    image.size !== size ||
    image.status !== 'active'
  ) {
    throw new BenchFailure(
      `service upload ${name}: checksum ${image.checksum} (want ${md5}), size ${image.size} (want ${size}), status ${image.status}`,
    );
  }
  return { ...r, imageId: image.id };
}

async function serviceDownload({ service, imageId, size, label }) {
  const r = await withCpu(service.pid, () =>
    curlDownload({
      url: `http://127.0.0.1:${service.port}/v1/images/${imageId}`,
    }),
  );
  assertDownload(r, size, `service download ${label}`);
  return r;
}

/**
 * Upload then download phase for one input file: the service and every
 * baseline take turns within each repetition, so drift hits all alike.
 * Where the service misses a ratio target (or BENCH_CPU_PROF=1), one extra
 * service transfer runs under the CPU profiler, after the measured ones.
 */
export async function runTransferBench({
  input,
  service,
  bare,
  reps,
  runDir,
  profileDir,
  config,
  targets,
  log,
}) {
  const { size, path: file, md5 } = input;
  const label = `${size / MiB} MiB`;
  const responseFile = join(runDir, 'curl-response.json');
  const line = (phase, rep, who, r, extra = '') =>
    log(
      `  ${phase.padEnd(8)} ${label} rep ${rep} ${who.padEnd(16)} ${formatRate(rateOf(size, r))}` +
        `  server cpu ${r.cpuSeconds}s  ${machineBusy(r)}${extra}`,
    );

  // --- upload phase
  const upSampler = new RssSampler({
    service: service.pid,
    ...Object.fromEntries(
      UPLOAD_BASELINES.map((b) => [b.key, bare[b.key].pid]),
    ),
  }).start();
  const upRuns = { service: [], 'receive-only': [], naive: [] };
  let keptImageId;
  for (let rep = 1; rep <= reps; rep++) {
    service.assertAlive();
    for (const b of UPLOAD_BASELINES) {
      const server = bare[b.key];
      const r = await withCpu(server.pid, () =>
        curlUpload({
          url: `http://127.0.0.1:${server.port}/v1/images`,
          file,
          headers: uploadHeaders(`bare-${rep}`),
          responseFile,
        }),
      );
      const body = parseJson(r.body);
      if (
        r.status !== 201 ||
        body?.bytes !== size ||
        (b.key === 'naive' && body.md5 !== md5)
      ) {
        throw new BenchFailure(
          `${b.label} upload ${label} failed: HTTP ${r.status} curl exit ${r.curlExit} ${r.stderr} ${r.body.slice(0, 300)}`,
        );
      }
      upRuns[b.key].push(transferRecord(size, rep, r));
      line('upload', rep, b.key, r);
    }

    const r = await serviceUpload({
      service,
      input,
      name: `bench-upload-${size / MiB}MiB-${rep}`,
      responseFile,
    });
    upRuns.service.push(transferRecord(size, rep, r));
    line('upload', rep, 'service', r, '  checksum ok');
    // Keep only the last upload: older copies would just pile dirty pages onto the disk.
    if (keptImageId) await deleteImage(service.port, keptImageId, log);
    keptImageId = r.imageId;
  }
  const uploadRss = upSampler.stop();

  // --- download phase
  const downSampler = new RssSampler({
    service: service.pid,
    ...Object.fromEntries(
      DOWNLOAD_VARIANTS.map((v) => [v.key, bare[v.key].pid]),
    ),
  }).start();
  const check = await downloadDigest(service.port, `/v1/images/${keptImageId}`);
  if (check.status !== 200 || check.bytes !== size || check.md5 !== md5) {
    throw new BenchFailure(
      `service download ${label} verification: HTTP ${check.status}, ${check.bytes} bytes, md5 ${check.md5} (want ${md5})`,
    );
  }
  log(`  download ${label} content verified (md5 matches)`);
  const downRuns = {
    service: [],
    ...Object.fromEntries(DOWNLOAD_VARIANTS.map((v) => [v.key, []])),
  };
  for (let rep = 1; rep <= reps; rep++) {
    service.assertAlive();
    for (const v of DOWNLOAD_VARIANTS) {
      const server = bare[v.key];
      const r = await withCpu(server.pid, () =>
        curlDownload({
          url: `http://127.0.0.1:${server.port}/${encodeURIComponent(file)}`,
        }),
      );
      assertDownload(r, size, `${v.label} ${label}`);
      downRuns[v.key].push(transferRecord(size, rep, r));
      line('download', rep, v.key, r);
    }
    const r = await serviceDownload({
      service,
      imageId: keptImageId,
      size,
      label,
    });
    downRuns.service.push(transferRecord(size, rep, r));
    line('download', rep, 'service', r);
  }
  const downloadRss = downSampler.stop();

  const upload = Object.fromEntries(
    Object.entries(upRuns).map(([k, runs]) => [k, summarize(size, runs)]),
  );
  const download = Object.fromEntries(
    Object.entries(downRuns).map(([k, runs]) => [k, summarize(size, runs)]),
  );
  const bestBare = DOWNLOAD_VARIANTS.map((v) => ({
    ...v,
    ...download[v.key],
  })).sort((a, b) => b.medianBytesPerSecond - a.medianBytesPerSecond)[0];
  const ratio = (a, b) => round(a / b, 3);
  const ratios = {
    uploadServiceOverNaive: ratio(
      upload.service.medianBytesPerSecond,
      upload.naive.medianBytesPerSecond,
    ),
    uploadServiceOverReceiveOnly: ratio(
      upload.service.medianBytesPerSecond,
      upload['receive-only'].medianBytesPerSecond,
    ),
    downloadServiceOverBestBare: ratio(
      download.service.medianBytesPerSecond,
      bestBare.medianBytesPerSecond,
    ),
  };

  const profiles = {};
  if (
    shouldProfile(
      config,
      ratios.uploadServiceOverNaive < targets.minUploadOverNaive,
    )
  ) {
    log(`  profiling one extra service upload of ${label} (main thread only)`);
    const { result: r, profile } = await profileDuring(
      service,
      profileDir,
      () =>
        serviceUpload({
          service,
          input,
          name: `bench-profiled-${size / MiB}MiB`,
          responseFile,
        }),
    );
    await deleteImage(service.port, r.imageId, log);
    if (profile) {
      profiles.upload = {
        what: `service upload ${label}, ${formatRate(rateOf(size, r))} while profiling`,
        ...profile,
      };
    }
  }
  if (
    shouldProfile(
      config,
      ratios.downloadServiceOverBestBare < targets.minDownloadOverBestBare,
    )
  ) {
    log(`  profiling one extra service download of ${label}`);
    const { result: r, profile } = await profileDuring(
      service,
      profileDir,
      () => serviceDownload({ service, imageId: keptImageId, size, label }),
    );
    if (profile) {
      profiles.download = {
        what: `service download ${label}, ${formatRate(rateOf(size, r))} while profiling`,
        ...profile,
      };
    }
  }
  await deleteImage(service.port, keptImageId, log);

  return {
    sizeBytes: size,
    sizeMiB: size / MiB,
    upload,
    download,
    variants: Object.fromEntries(
      DOWNLOAD_VARIANTS.map((v) => [v.key, v.label]),
    ),
    bestBareDownload: { key: bestBare.key, label: bestBare.label },
    ratios,
    rss: { upload: uploadRss, download: downloadRss },
    profiles,
  };
}

/**
 * Machine-wide CPU while curl ran (spawn included), as a share of all cores:
 * a contention hint, coarse (10 ms ticks) on short transfers.
 */
function machineBusy(r) {
  const pct = (100 * r.machineCpuSeconds) / (r.wallSeconds * cpus().length);
  return `machine busy ${pct.toFixed(0)}%`;
}

function transferRecord(size, rep, r) {
  return {
    rep,
    status: r.status,
    seconds: r.seconds,
    bytesPerSecond: Math.round(rateOf(size, r)),
    curlReportedBytesPerSecond: r.curlSpeed,
    cpuSeconds: r.cpuSeconds,
    // Server + curl + anything else running, over wallSeconds (curl spawn included).
    machineCpuSeconds: r.machineCpuSeconds,
    wallSeconds: r.wallSeconds,
  };
}

function assertDownload(r, size, what) {
  if (r.status !== 200 || r.bytes !== size) {
    throw new BenchFailure(
      `${what} failed: HTTP ${r.status}, ${r.bytes} bytes, curl exit ${r.curlExit} ${r.stderr}`,
    );
  }
}

async function deleteImage(port, id, log) {
  try {
    const r = await httpRequest({
      port,
      method: 'DELETE',
      path: `/v1/images/${id}`,
    });
    if (r.status !== 200) log(`  (warning: DELETE ${id} answered ${r.status})`);
  } catch (err) {
    log(`  (warning: DELETE ${id} failed: ${err.message})`);
  }
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
