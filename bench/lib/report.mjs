import { formatRate } from './stats.mjs';

export const TARGETS = {
  minUploadOverNaive: 1.5,
  minDownloadOverBestBare: 0.9,
  maxPeakRssMiB: 150,
  minRequestsPerSecond: 2000,
  maxP99Ms: 10,
  // WORKERS=2 (issue 10): list and HEAD.
  minWorkers2RequestsPerSecond: 3000,
  minWorkers2OverWorkers1: 1.7,
  // Scale phase: p50 of every list query at 100,000 images (SQLite), and against 1,000 images.
  scaleMaxP50Ms: 2,
  scaleMaxRatio: 2,
};

/** Rows of { metric, value, target, pass } where pass is true, false or null (info only). */
export function buildSummary({ service, transfers, metadata, metadataWorkers2 }) {
  const rows = [];
  const info = (metric, value) =>
    rows.push({ metric, value, target: '', pass: null });
  const judged = (metric, value, target, pass) =>
    rows.push({ metric, value, target, pass });

  if (service?.idleRssMiB) {
    info(
      'service RSS idle, 1 s after start',
      `${service.idleRssMiB} MiB (anon ${service.idleRssAnonMiB}, file ${service.idleRssFileMiB})`,
    );
  }

  for (const t of transfers ?? []) {
    const s = `${t.sizeMiB} MiB`;
    const up = t.upload;
    info(`upload ${s}: service`, formatRate(up.service.medianBytesPerSecond));
    info(
      `upload ${s}: bare receive-only`,
      formatRate(up['receive-only'].medianBytesPerSecond),
    );
    info(
      `upload ${s}: bare naive (md5+sha512 main thread)`,
      formatRate(up.naive.medianBytesPerSecond),
    );
    judged(
      `upload ${s}: service / naive`,
      t.ratios.uploadServiceOverNaive.toFixed(2),
      `>= ${TARGETS.minUploadOverNaive}`,
      t.ratios.uploadServiceOverNaive >= TARGETS.minUploadOverNaive,
    );
    info(
      `upload ${s}: service / receive-only`,
      t.ratios.uploadServiceOverReceiveOnly.toFixed(2),
    );
    info(
      `upload ${s}: CPU s/GB service | naive`,
      `${up.service.medianCpuSecondsPerGB} | ${up.naive.medianCpuSecondsPerGB}`,
    );

    const down = t.download;
    info(
      `download ${s}: service`,
      formatRate(down.service.medianBytesPerSecond),
    );
    for (const [key, label] of Object.entries(t.variants)) {
      const best = key === t.bestBareDownload.key ? ' [best]' : '';
      info(
        `download ${s}: bare ${label}${best}`,
        formatRate(down[key].medianBytesPerSecond),
      );
    }
    judged(
      `download ${s}: service / best bare`,
      t.ratios.downloadServiceOverBestBare.toFixed(2),
      `>= ${TARGETS.minDownloadOverBestBare}`,
      t.ratios.downloadServiceOverBestBare >= TARGETS.minDownloadOverBestBare,
    );
    info(
      `download ${s}: CPU s/GB service | best bare`,
      `${down.service.medianCpuSecondsPerGB} | ${down[t.bestBareDownload.key].medianCpuSecondsPerGB}`,
    );

    for (const phase of ['upload', 'download']) {
      const p = t.rss[phase].processes.service;
      const peak = Math.max(p.peakRssMiB, p.hwmResetAtStart ? p.hwmMiB : 0);
      judged(
        `service peak RSS, ${phase} ${s}`,
        `${peak.toFixed(1)} MiB (sampled ${p.peakRssMiB}, VmHWM ${p.hwmMiB})`,
        `< ${TARGETS.maxPeakRssMiB} MiB`,
        peak < TARGETS.maxPeakRssMiB,
      );
      const bare = Object.entries(t.rss[phase].processes).filter(
        ([k]) => k !== 'service',
      );
      const bareMax = Math.max(
        ...bare.map(([, b]) => Math.max(b.peakRssMiB, b.hwmMiB ?? 0)),
      );
      info(
        `bare servers peak RSS, ${phase} ${s}`,
        `max ${bareMax.toFixed(1)} MiB`,
      );
    }
  }

  if (metadata) {
    const seed = metadata.seed;
    info(
      'seed reserve-only images',
      `${seed.created}/${seed.count} in ${seed.seconds} s (${seed.imagesPerSecond}/s, ${seed.concurrency} concurrent)`,
    );
    for (const [key, r] of Object.entries(metadata.load)) {
      judged(
        `${key}: requests/s`,
        String(r.requestsPerSecond),
        `>= ${TARGETS.minRequestsPerSecond}`,
        r.requestsPerSecond >= TARGETS.minRequestsPerSecond,
      );
      info(`${key}: p50 latency`, `${r.latencyMs.p50} ms`);
      judged(
        `${key}: p99 latency`,
        `${r.latencyMs.p99} ms`,
        `< ${TARGETS.maxP99Ms} ms`,
        r.latencyMs.p99 < TARGETS.maxP99Ms,
      );
      info(`${key}: max latency`, `${r.latencyMs.max} ms`);
      judged(
        `${key}: non-2xx + errors`,
        `${r.non2xx} + ${r.errors}`,
        '0',
        r.non2xx + r.errors === 0,
      );
      info(
        `${key}: service CPU`,
        `${r.serviceCpuPercent}% of a core, ${r.serviceCpuMsPerRequest} ms/req ` +
          `(one core saturated ~ ${Math.round(1000 / r.serviceCpuMsPerRequest)} req/s)`,
      );
      const bare = metadata.bare?.[key];
      if (bare) {
        info(
          `${key}: bare node:http sending the same answer`,
          `${bare.serviceCpuMsPerRequest} ms/req, ${bare.requestsPerSecond} req/s; ` +
            `the service takes ${(r.serviceCpuMsPerRequest / bare.serviceCpuMsPerRequest).toFixed(2)}x its CPU per request`,
        );
      }
      if (r.serviceRss) {
        info(
          `${key}: service peak RSS`,
          `${Math.max(r.serviceRss.peakRssMiB, r.serviceRss.hwmMiB ?? 0).toFixed(1)} MiB`,
        );
      }
      info(
        `${key}: CPU of load generator | other processes`,
        `${r.generatorCpuPercent}% | ${r.otherCpuPercent}%`,
      );
    }
  }
  if (metadata && metadataWorkers2) {
    for (const [key, r] of Object.entries(metadataWorkers2.load)) {
      const one = metadata.load[key];
      judged(
        `WORKERS=2 ${key}: requests/s`,
        String(r.requestsPerSecond),
        `>= ${TARGETS.minWorkers2RequestsPerSecond}`,
        r.requestsPerSecond >= TARGETS.minWorkers2RequestsPerSecond,
      );
      const ratio = one ? r.requestsPerSecond / one.requestsPerSecond : 0;
      judged(
        `WORKERS=2 ${key}: over WORKERS=1`,
        `${ratio.toFixed(2)}x`,
        `>= ${TARGETS.minWorkers2OverWorkers1}x`,
        ratio >= TARGETS.minWorkers2OverWorkers1,
      );
      info(`WORKERS=2 ${key}: p50 latency`, `${r.latencyMs.p50} ms`);
      judged(
        `WORKERS=2 ${key}: p99 latency`,
        `${r.latencyMs.p99} ms`,
        `< ${TARGETS.maxP99Ms} ms`,
        r.latencyMs.p99 < TARGETS.maxP99Ms,
      );
      judged(
        `WORKERS=2 ${key}: non-2xx + errors`,
        `${r.non2xx} + ${r.errors}`,
        '0',
        r.non2xx + r.errors === 0,
      );
      info(
        `WORKERS=2 ${key}: service CPU (primary + workers)`,
        `${r.serviceCpuPercent}% of a core (primary ${r.primaryCpuPercent ?? '?'}%), ${r.serviceCpuMsPerRequest} ms/req`,
      );
      const peaks = [r.serviceRss, ...Object.values(r.workerRss ?? {})]
        .filter(Boolean)
        .map((m) => Math.max(m.peakRssMiB, m.hwmMiB ?? 0).toFixed(1));
      judged(
        `WORKERS=2 ${key}: peak RSS primary, workers`,
        `${peaks.join(', ')} MiB`,
        `< ${TARGETS.maxPeakRssMiB} MiB each`,
        peaks.every((p) => Number(p) < TARGETS.maxPeakRssMiB),
      );
      info(
        `WORKERS=2 ${key}: CPU of load generator | other processes`,
        `${r.generatorCpuPercent}% | ${r.otherCpuPercent}%`,
      );
    }
  }
  return rows;
}

export function printTable(rows, write = console.log) {
  const w1 = Math.max(6, ...rows.map((r) => r.metric.length));
  const w2 = Math.max(5, ...rows.map((r) => r.value.length));
  const w3 = Math.max(6, ...rows.map((r) => r.target.length));
  const line = (a, b, c, d) =>
    `${a.padEnd(w1)}  ${b.padEnd(w2)}  ${c.padEnd(w3)}  ${d}`;
  write(line('Metric', 'Value', 'Target', 'Result'));
  write('-'.repeat(w1 + w2 + w3 + 14));
  for (const r of rows) {
    write(
      line(
        r.metric,
        r.value,
        r.target,
        r.pass === null ? '' : r.pass ? 'PASS' : 'FAIL',
      ),
    );
  }
}

/** Prints CPU-profile summaries (each carries a `what` saying what ran). */
export function printProfiles(profiles, write = console.log) {
  for (const p of profiles) {
    write(
      `\nCPU profile of the service main thread during ${p.what} ` +
        `(${p.durationMs} ms window, busy ${p.busyMs} ms):`,
    );
    const section = (title, items) => {
      write(`  ${title}:`);
      for (const i of items.slice(0, 12)) {
        write(
          `    ${i.pctOfBusy.toFixed(1).padStart(5)}%  ${i.ms.toFixed(0).padStart(6)} ms  ${i.name}`,
        );
      }
    };
    section('self time by package / area', p.selfByCategory);
    section('inclusive time by package / area', p.inclusiveByCategory);
    section('top self-time functions', p.topSelfFunctions);
    section('inclusive time of service functions', p.inclusiveServiceFunctions);
  }
}
