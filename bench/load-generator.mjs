// Closed-loop HTTP load generator, forked by run.mjs so it never shares a
// process with the service. argv[2] is JSON:
//   { port, method, path? , idsFile?, connections, warmupSeconds, durationSeconds }
// With idsFile, each request goes to /v1/images/<random id from the file>.
// IPC messages to the parent: measure-start, measure-end, result.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { percentile } from './lib/stats.mjs';

const config = JSON.parse(process.argv[2]);
const ids = config.idsFile
  ? JSON.parse(readFileSync(config.idsFile, 'utf8'))
  : null;
const agent = new Agent({ keepAlive: true, maxSockets: config.connections });

const now = () => performance.now();
const latencies = [];
let measureStart = Infinity;
let measureEnd = Infinity;
let stopped = false;
let completed = 0;
let non2xx = 0;
let errors = 0;
const statusCounts = {};
const errorSamples = new Set();

function once() {
  const path = ids
    ? `/v1/images/${ids[Math.floor(Math.random() * ids.length)]}`
    : config.path;
  return new Promise((resolve) => {
    const started = now();
    const req = request(
      {
        host: '127.0.0.1',
        port: config.port,
        method: config.method,
        path,
        agent,
      },
      (res) => {
        res.on('end', () =>
          resolve({ started, ended: now(), status: res.statusCode }),
        );
        res.on('error', (err) =>
          resolve({ started, ended: now(), error: err }),
        );
        res.resume();
      },
    );
    req.on('error', (err) => resolve({ started, ended: now(), error: err }));
    req.end();
  });
}

async function connectionLoop() {
  while (!stopped) {
    const r = await once();
    if (r.error) {
      // A dead server fails instantly: back off so errors cannot pass for throughput.
      if (r.started >= measureStart && r.ended <= measureEnd) errors++;
      if (errorSamples.size < 5) errorSamples.add(String(r.error.message));
      await new Promise((resolve) => setTimeout(resolve, 10));
      continue;
    }
    if (r.started < measureStart || r.ended > measureEnd) continue;
    // Only answered requests count towards requests/s and latency.
    completed++;
    latencies.push(r.ended - r.started);
    statusCounts[r.status] = (statusCounts[r.status] ?? 0) + 1;
    if (r.status < 200 || r.status > 299) non2xx++;
  }
}

const loops = Array.from({ length: config.connections }, () =>
  connectionLoop(),
);

setTimeout(() => {
  measureStart = now();
  measureEnd = measureStart + config.durationSeconds * 1000;
  process.send({ type: 'measure-start' });
  setTimeout(() => {
    stopped = true;
    process.send({ type: 'measure-end' });
  }, config.durationSeconds * 1000);
}, config.warmupSeconds * 1000);

await Promise.all(loops);
agent.destroy();
latencies.sort((a, b) => a - b);
const seconds = (measureEnd - measureStart) / 1000;
const pick = (p) => percentile(latencies, p);
process.send(
  {
    type: 'result',
    requests: completed,
    seconds,
    requestsPerSecond: completed / seconds,
    latencyMs: {
      min: latencies[0],
      mean: latencies.reduce((a, b) => a + b, 0) / (latencies.length || 1),
      p50: pick(50),
      p90: pick(90),
      p99: pick(99),
      p999: pick(99.9),
      max: latencies[latencies.length - 1],
    },
    non2xx,
    errors,
    statusCounts,
    errorSamples: [...errorSamples],
  },
  () => process.exit(0),
);
