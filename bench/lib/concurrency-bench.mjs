// Memory under concurrent transfers (issue 12 §3): N uploads and N downloads
// of one image size at once against the service; peak RSS during the phase
// and RSS 10 s after, plus a round of many concurrent small uploads.
import { curlDownload, curlUpload } from './curl.mjs';
import { ensureInputFile } from './input-files.mjs';
import { readCpuSeconds, readMemory, RssSampler } from './proc-stats.mjs';
import { MiB, round } from './stats.mjs';
import { join } from 'node:path';

const META = [
  'x-image-meta-name: concurrency-bench',
  'x-image-meta-disk_format: raw',
  'x-image-meta-container_format: bare',
];

async function uploadAll(service, file, count, runDir, tag) {
  const url = `http://127.0.0.1:${service.port}/v1/images`;
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      curlUpload({
        url,
        file,
        headers: META,
        responseFile: join(runDir, `conc-${tag}-${i}.json`),
      }),
    ),
  );
}

async function measured(service, work) {
  const sampler = new RssSampler({ service: service.pid }).start();
  const cpu0 = readCpuSeconds(service.pid);
  const t0 = performance.now();
  const results = await work();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = readCpuSeconds(service.pid) - cpu0;
  const { processes } = sampler.stop();
  const rssAfter = [];
  for (const wait of [1, 5, 10]) {
    await new Promise((r) =>
      setTimeout(r, (wait - (rssAfter.at(-1)?.s ?? 0)) * 1000),
    );
    rssAfter.push({ s: wait, rssMiB: round((readMemory(service.pid)?.rssKiB ?? 0) / 1024, 1) });
  }
  return {
    seconds: round(seconds, 2),
    serviceCpuSeconds: round(cpu, 2),
    peakRssMiB: processes.service.peakRssMiB,
    rssAfter,
    statuses: results.reduce((m, r) => ({ ...m, [r.status]: (m[r.status] ?? 0) + 1 }), {}),
    results,
  };
}

export async function runConcurrencyBench({ service, workDir, runDir, config, log }) {
  const { count, sizeMiB, smallCount } = config.concurrency;
  const big = ensureInputFile(workDir, sizeMiB, log);
  const small = ensureInputFile(workDir, 8, log);
  const before = round((readMemory(service.pid)?.rssKiB ?? 0) / 1024, 1);

  // Images to download, uploaded one at a time first.
  const seeded = await uploadAll(service, big.path, 1, runDir, 'seed');
  const seedId = JSON.parse(seeded[0].body).image.id;

  log(`concurrency: ${count} uploads + ${count} downloads of ${sizeMiB} MiB at once`);
  const mixed = await measured(service, () =>
    Promise.all([
      uploadAll(service, big.path, count, runDir, 'up'),
      Promise.all(
        Array.from({ length: count }, () =>
          curlDownload({ url: `http://127.0.0.1:${service.port}/v1/images/${seedId}` }),
        ),
      ),
    ]).then(([ups, downs]) => [...ups, ...downs]),
  );
  const moved = mixed.results.reduce((n, r) => n + (r.bytes || 0), 0);
  log(
    `  peak RSS ${mixed.peakRssMiB} MiB, after ${mixed.rssAfter.map((a) => `${a.s}s ${a.rssMiB}`).join(', ')} MiB; ` +
      `${round(moved / MiB / mixed.seconds, 1)} MiB/s total, ${mixed.serviceCpuSeconds} s CPU; statuses ${JSON.stringify(mixed.statuses)}`,
  );

  log(`concurrency: ${smallCount} uploads of 8 MiB at once`);
  const many = await measured(service, () => uploadAll(service, small.path, smallCount, runDir, 'small'));
  log(
    `  peak RSS ${many.peakRssMiB} MiB, after ${many.rssAfter.map((a) => `${a.s}s ${a.rssMiB}`).join(', ')} MiB; ` +
      `${many.seconds} s, ${many.serviceCpuSeconds} s CPU; statuses ${JSON.stringify(many.statuses)}`,
  );
  const strip = ({ results, ...rest }) => rest;
  const failures = [...mixed.results, ...many.results].filter(
    (r) => r.status !== 200 && r.status !== 201,
  ).length;
  return {
    rssBeforeMiB: before,
    mixed: { count, sizeMiB, totalMiBPerSecond: round(moved / MiB / mixed.seconds, 1), ...strip(mixed) },
    manySmall: { count: smallCount, sizeMiB: 8, ...strip(many) },
    failures,
    targets: { peakRssMiB: 200, rssAfter10sMiB: 150 },
    met:
      mixed.peakRssMiB < 200 && mixed.rssAfter.at(-1).rssMiB < 150 && failures === 0,
  };
}
