// `npm run bench`: transfer throughput, memory and metadata latency of the
// built service against bare node:http baselines. Prints a summary table and
// writes everything to bench/.work/last-run.json.
//
// Environment:
//   BENCH_SIZES_MIB   comma list of input sizes (default 100,1024)
//   BENCH_REPS        repetitions per transfer, median reported (default 3)
//   BENCH_PHASES      transfer,meta,concurrency,storm,scale (default transfer,meta,concurrency,storm;
//                     storm = 16 clients on a 1 GiB Swift image: no/cold/warm cache)
//   BENCH_CONCURRENCY  concurrent uploads and downloads in the concurrency phase (default 16)
//   BENCH_CONCURRENCY_SIZE_MIB  their image size (default 64)
//   BENCH_CONCURRENCY_SMALL  concurrent 8 MiB uploads after that (default 100)
//   BENCH_STORM_SIZE_MIB  image size of the boot storm (default 1024)
//   BENCH_SCALE_DATABASES  scale phase: comma list of sqlite,postgres,mysql (default sqlite)
//   BENCH_SCALE_REQUESTS   scale phase: timed requests per query and page (default 60)
//                     (the scale phase seeds 1,000 then BENCH_SEED_COUNT images, default 100,000 there)
//   BENCH_SEED_COUNT  images seeded for the metadata load (default 10000)
//   BENCH_LOAD_SECONDS / BENCH_WARMUP_SECONDS  per endpoint (default 10 / 2)
//   BENCH_CPU_PROF    auto (profile an endpoint that missed a target), 1 (always), 0 (never)
//   BENCH_TIMEOUT_SECONDS  hard limit for the whole run (default 900)
//   BENCH_SERVICE_NODE_ARGS  extra node flags for the service (e.g. --trace-gc; log in bench/.work/last-service.log)
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import {
  cleanupSync,
  installExitHandlers,
  registerTempDir,
} from './lib/children.mjs';
import { curlVersion } from './lib/curl.mjs';
import { ensureInputFile } from './lib/input-files.mjs';
import { readMemory } from './lib/proc-stats.mjs';
import { runConcurrencyBench } from './lib/concurrency-bench.mjs';
import { runBootStorm } from './lib/boot-storm.mjs';
import { runMetadataBench } from './lib/metadata-bench.mjs';
import { printScale, runScaleBench } from './lib/scale-bench.mjs';
import {
  buildSummary,
  printProfiles,
  printTable,
  TARGETS,
} from './lib/report.mjs';
import { ensureBuilt, startService } from './lib/service.mjs';
import { MiB, round } from './lib/stats.mjs';
import {
  runTransferBench,
  startBareServers,
  stopBareServers,
} from './lib/transfer-bench.mjs';

const BENCH_DIR = import.meta.dirname;
const ROOT = resolve(BENCH_DIR, '..');
const WORK = join(BENCH_DIR, '.work');

function envNumber(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0)
    throw new Error(`${name} must be a positive number, got ${raw}`);
  return n;
}

function readConfig() {
  const sizes = (process.env.BENCH_SIZES_MIB ?? '100,1024')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n <= 0)) {
    throw new Error(
      `BENCH_SIZES_MIB must be a comma list of positive integers`,
    );
  }
  const phases = (process.env.BENCH_PHASES ?? 'transfer,meta,concurrency,storm')
    .split(',')
    .map((s) => s.trim());
  return {
    sizesMiB: sizes,
    reps: envNumber('BENCH_REPS', 3),
    phases,
    seedCount: envNumber('BENCH_SEED_COUNT', 10_000),
    scaleCount: envNumber('BENCH_SEED_COUNT', 100_000),
    scaleRequests: envNumber('BENCH_SCALE_REQUESTS', 60),
    scaleDatabases: (process.env.BENCH_SCALE_DATABASES ?? 'sqlite')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    seedConcurrency: 16,
    connections: 16,
    warmupSeconds: envNumber('BENCH_WARMUP_SECONDS', 2),
    loadSeconds: envNumber('BENCH_LOAD_SECONDS', 10),
    cpuProf: process.env.BENCH_CPU_PROF ?? 'auto',
    timeoutSeconds: envNumber('BENCH_TIMEOUT_SECONDS', 900),
    concurrency: {
      count: envNumber('BENCH_CONCURRENCY', 16),
      sizeMiB: envNumber('BENCH_CONCURRENCY_SIZE_MIB', 64),
      smallCount: envNumber('BENCH_CONCURRENCY_SMALL', 100),
    },
  };
}

const t0 = performance.now();
function log(message) {
  const elapsed = ((performance.now() - t0) / 1000).toFixed(1).padStart(6);
  console.log(`[${elapsed}s] ${message}`);
}

async function main() {
  installExitHandlers();
  const config = readConfig();
  const watchdog = setTimeout(() => {
    console.error(
      `bench: exceeded BENCH_TIMEOUT_SECONDS=${config.timeoutSeconds}, aborting`,
    );
    cleanupSync();
    process.exit(1);
  }, config.timeoutSeconds * 1000);
  watchdog.unref();

  const report = {
    startedAt: new Date().toISOString(),
    environment: {
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memoryMiB: Math.round(totalmem() / MiB),
      kernel: release(),
      loadAverageAtStart: loadavg().map((n) => round(n, 2)),
      curl: await curlVersion(),
      loadGenerator: 'bench/load-generator.mjs (node:http, keep-alive Agent)',
    },
    config,
    targets: TARGETS,
  };
  let failed = false;

  mkdirSync(WORK, { recursive: true });
  const runDir = mkdtempSync(join(WORK, 'run-'));
  registerTempDir(runDir);
  const profileDir = join(runDir, 'profiles');
  const scratchDir = join(runDir, 'bare-uploads');
  mkdirSync(profileDir);
  mkdirSync(scratchDir);

  let service;
  let bare;
  try {
    log(
      `load average ${report.environment.loadAverageAtStart.join(' ')} on ${report.environment.cpus} CPUs` +
        ' (other work on this machine skews every figure)',
    );
    report.build = await ensureBuilt(ROOT, log);

    const inputs = config.phases.includes('transfer')
      ? config.sizesMiB.map((n) => ensureInputFile(WORK, n, log))
      : [];
    report.inputs = inputs.map(({ path, size, md5 }) => ({ path, size, md5 }));

    const serviceOptions = {
      root: ROOT,
      runDir,
      logPath: join(WORK, 'last-service.log'),
      profileDir,
      hookPath: join(BENCH_DIR, 'cpu-profile.hook.mjs'),
      imageSizeCap: Math.max(
        4 * 1024 * MiB,
        2 * Math.max(0, ...config.sizesMiB) * MiB,
      ),
      log,
    };
    try {
      service = await startService(serviceOptions);
    } catch (err) {
      // Someone else's build may have emptied dist/ just now: rebuild once and retry.
      log(
        `service did not start (${err.message.split('\n')[0]}); retrying in 15 s`,
      );
      await new Promise((r) => setTimeout(r, 15_000));
      report.build = await ensureBuilt(ROOT, log);
      service = await startService(serviceOptions);
    }
    log(
      `service pid ${service.pid} on 127.0.0.1:${service.port} (ready in ${Math.round(service.startupMs)} ms)`,
    );
    await new Promise((r) => setTimeout(r, 1000));
    const idle = readMemory(service.pid);
    report.service = {
      pid: service.pid,
      port: service.port,
      startupMs: Math.round(service.startupMs),
      idleRssMiB: idle ? round(idle.rssKiB / 1024, 1) : null,
      idleRssAnonMiB: idle ? round(idle.rssAnonKiB / 1024, 1) : null,
      idleRssFileMiB: idle ? round(idle.rssFileKiB / 1024, 1) : null,
      idleThreads: idle?.threads,
    };
    log(
      `service RSS when idle after start: ${report.service.idleRssMiB} MiB ` +
        `(anon ${report.service.idleRssAnonMiB}, file ${report.service.idleRssFileMiB}, ${report.service.idleThreads} threads)`,
    );

    if (inputs.length > 0) {
      bare = await startBareServers(
        join(BENCH_DIR, 'bare-server.mjs'),
        scratchDir,
      );
      report.transfers = [];
      for (const input of inputs) {
        log(
          `transfers of ${input.size / MiB} MiB (${config.reps} reps, median reported)`,
        );
        report.transfers.push(
          await runTransferBench({
            input,
            service,
            bare,
            reps: config.reps,
            runDir,
            profileDir,
            config,
            targets: TARGETS,
            log,
          }),
        );
      }
      await stopBareServers(bare);
      bare = undefined;
    }

    // Before the metadata phase, which leaves a WORKERS=2 service behind.
    if (config.phases.includes('concurrency')) {
      report.concurrency = await runConcurrencyBench({
        service,
        workDir: WORK,
        runDir,
        config,
        log,
      });
    }

    if (config.phases.includes('meta')) {
      report.metadata = await runMetadataBench({
        service,
        runDir,
        profileDir,
        config,
        targets: TARGETS,
        log,
        genPath: join(BENCH_DIR, 'load-generator.mjs'),
        bareServerPath: join(BENCH_DIR, 'bare-server.mjs'),
      });
      const { ids } = report.metadata;
      delete report.metadata.ids;
      // The same load on the same database with WORKERS=2 (profiles would only see the primary).
      await service.stop();
      service = await startService({ ...serviceOptions, workers: 2 });
      await new Promise((r) => setTimeout(r, 2000));
      log(`service with WORKERS=2: primary pid ${service.pid} on 127.0.0.1:${service.port}`);
      report.metadataWorkers2 = await runMetadataBench({
        service,
        runDir,
        profileDir,
        config: { ...config, cpuProf: '0' },
        targets: TARGETS,
        log,
        genPath: join(BENCH_DIR, 'load-generator.mjs'),
        reuse: { result: report.metadata.seed, ids },
      });
      delete report.metadataWorkers2.ids;
    }

    if (config.phases.includes('storm')) {
      log('boot storm: 16 concurrent clients, no cache / cold cache / warm cache');
      report.bootStorm = await runBootStorm({
        root: ROOT,
        runDir,
        serviceOptions,
        input: ensureInputFile(WORK, envNumber('BENCH_STORM_SIZE_MIB', 1024), log),
        log,
      });
    }
    if (config.phases.includes('scale')) {
      report.scale = await runScaleBench({
        root: ROOT,
        runDir,
        serviceOptions,
        startService,
        config,
        log,
      });
    }

  } catch (err) {
    failed = true;
    report.error = err?.stack ?? String(err);
    console.error(`\nbench: FAILED: ${err?.message ?? err}`);
  }

  if (service?.died) {
    failed = true;
    report.error = [report.error, service.died].filter(Boolean).join('\n');
  }
  if (bare) await stopBareServers(bare);
  if (service) await service.stop();

  report.finishedAt = new Date().toISOString();
  report.durationSeconds = round((performance.now() - t0) / 1000, 1);
  report.summary = buildSummary(report);
  report.ok = !failed;
  const jsonPath = join(WORK, 'last-run.json');
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);

  printProfiles([
    ...(report.transfers ?? []).flatMap((t) => Object.values(t.profiles)),
    ...Object.values(report.metadata?.profiles ?? {}),
  ]);
  if (report.scale) printScale(report.scale, TARGETS);
  console.log('');
  printTable(report.summary);
  const judged = report.summary.filter((r) => r.pass !== null);
  console.log(
    `\n${judged.filter((r) => r.pass).length}/${judged.length} targets met; ` +
      `MB/s = 10^6 bytes/s; run took ${report.durationSeconds} s; details in ${jsonPath}` +
      (failed
        ? '\nThe run did NOT complete (see error above); exit code 1.'
        : ''),
  );
  cleanupSync();
  clearTimeout(watchdog);
  process.exitCode = failed ? 1 : 0;
}

await main();
