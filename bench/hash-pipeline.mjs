// Upload hashing throughput: md5+sha512 on the main thread vs DigestStream.
// Build first (`npm run build`), then: node bench/hash-pipeline.mjs [memory|http] [rounds]
//   memory: 1 GiB from an in-memory generator -> Transform -> file under /tmp
//   http:   curl -T of a 1 GiB file -> node:http -> Transform -> file under /tmp
// Per-thread CPU seconds are printed because wall-clock numbers swing with
// whatever else runs on the machine.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { availableParallelism } from 'node:os';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestStream } from '../dist/src/images/upload/digest.stream.js';

const TOTAL = 1024 * 1024 * 1024;
const CHUNK = 64 * 1024;
const block = randomBytes(1024 * 1024);
const mode = process.argv[2] ?? 'memory';
const rounds = Number(process.argv[3] ?? 3);

class MainThreadDigest extends Transform {
  md5 = createHash('md5');
  sha512 = createHash('sha512');
  _transform(chunk, _encoding, callback) {
    this.md5.update(chunk);
    this.sha512.update(chunk);
    callback(null, chunk);
  }
  _flush(callback) {
    this.digests = {
      md5: this.md5.digest('hex'),
      sha512: this.sha512.digest('hex'),
    };
    callback();
  }
  async result() {
    return this.digests;
  }
}

function generator() {
  let sent = 0;
  return new Readable({
    read() {
      while (sent < TOTAL) {
        const offset = sent % block.length;
        sent += CHUNK;
        if (!this.push(block.subarray(offset, offset + CHUNK))) return;
      }
      this.push(null);
    },
  });
}

function threadCpu() {
  const seconds = new Map();
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    seconds.set(tid, (Number(fields[11]) + Number(fields[12])) / 100);
  }
  return seconds;
}

async function measure(name, run) {
  const before = threadCpu();
  const started = performance.now();
  const digests = await run();
  const elapsed = (performance.now() - started) / 1000;
  const after = threadCpu();
  const main = after.get(String(process.pid)) - before.get(String(process.pid));
  const others = [...after]
    .filter(([tid]) => tid !== String(process.pid))
    .map(([tid, s]) => s - (before.get(tid) ?? 0))
    .filter((s) => s >= 0.05)
    .sort((a, b) => b - a);
  console.log(
    `${mode} ${name.padEnd(6)} ${(TOTAL / 1e6 / elapsed).toFixed(0)} MB/s ` +
      `(${elapsed.toFixed(2)} s; cpu main ${main.toFixed(2)} s, other threads ` +
      `[${others.map((s) => s.toFixed(2)).join(', ')}]) md5 ${digests.md5}`,
  );
}

const variants = {
  main: () => new MainThreadDigest(),
  digest: () => new DigestStream(),
};
const out = `/tmp/hash-pipeline-${process.pid}.out`;

if (mode === 'memory') {
  for (let round = 0; round < rounds; round++) {
    for (const [name, create] of Object.entries(variants)) {
      await measure(name, async () => {
        const digest = create();
        await pipeline(generator(), digest, createWriteStream(out));
        rmSync(out);
        return digest.result();
      });
    }
  }
} else {
  const input = `/tmp/hash-pipeline-${process.pid}.in`;
  await pipeline(generator(), createWriteStream(input));
  let pending;
  const server = createServer((req, res) => {
    const digest = pending.create();
    pipeline(req, digest, createWriteStream(out))
      .then(() => digest.result())
      .then(pending.resolve, pending.reject)
      .finally(() => res.end());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/`;
  for (let round = 0; round < rounds; round++) {
    for (const [name, create] of Object.entries(variants)) {
      await measure(name, async () => {
        const done = new Promise((resolve, reject) => {
          pending = { create, resolve, reject };
        });
        const curl = spawn('curl', ['-sS', '-T', input, '-H', 'Expect:', url]);
        const [digests] = await Promise.all([
          done,
          new Promise((resolve) => curl.on('close', resolve)),
        ]);
        rmSync(out);
        return digests;
      });
    }
  }
  server.close();
  rmSync(input);
}
console.log(`cpus=${availableParallelism()}`);
