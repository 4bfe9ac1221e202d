import { spawn } from 'node:child_process';
import {
  closeSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isRunning, run, stopChild, track } from './children.mjs';
import { freePort, waitUntilAnswers } from './http-client.mjs';

/**
 * The environment assignments and node flags `npm run start:prod` gives the
 * service, so the bench runs it as deployed.
 */
export function startNodeCommand(root) {
  const script = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
    .scripts['start:prod'];
  const m = /^((?:\w+=\S+\s+)*)node\s+(.*?)\s*dist\/src\/main\.js$/.exec(script);
  if (!m) throw new Error(`unexpected start:prod script: ${script}`);
  const env = Object.fromEntries(
    m[1].split(/\s+/).filter(Boolean).map((a) => a.split('=', 2)),
  );
  return { env, flags: m[2].split(/\s+/).filter(Boolean) };
}

function mtimeOrZero(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, {
    recursive: true,
    withFileTypes: true,
  })) {
    if (!entry.isFile()) continue;
    newest = Math.max(
      newest,
      mtimeOrZero(join(entry.parentPath ?? entry.path, entry.name)),
    );
  }
  return newest;
}

/**
 * Runs `npm run build` when dist/src/main.js is missing or older than any
 * file under src/. Type errors elsewhere in the tree still emit JavaScript,
 * so a failed build counts only if it left no fresh main.js behind.
 */
export async function ensureBuilt(root, log) {
  const main = join(root, 'dist/src/main.js');
  const newestSrc = newestMtime(join(root, 'src'));
  if (mtimeOrZero(main) >= newestSrc) {
    log('dist/ is up to date with src/, not rebuilding');
    return { ran: false };
  }
  log('dist/ is missing or older than src/: npm run build');
  const started = Date.now();
  const r = await run('npm', ['run', 'build'], {
    cwd: root,
    timeoutMs: 300_000,
  });
  const seconds = (Date.now() - started) / 1000;
  if (r.code === 0) return { ran: true, exitCode: 0, seconds };
  // nest colours its output even into a pipe; strip the ANSI escapes.
  // oxlint-disable-next-line no-control-regex
  const output = `${r.stdout}\n${r.stderr}`.replace(/\x1b\[[0-9;]*m/g, '');
  const errors = output.split('\n').filter((l) => /error TS\d+/.test(l));
  if (mtimeOrZero(main) >= started - 1000) {
    log(
      `WARNING: build exited ${r.code} but emitted dist/ (type errors outside the bench?):`,
    );
    for (const line of errors.slice(0, 10)) log(`  ${line.trim()}`);
    return {
      ran: true,
      exitCode: r.code,
      seconds,
      typeErrors: errors.map((l) => l.trim()),
    };
  }
  throw new Error(
    `npm run build failed (exit ${r.code}):\n${output.slice(-4000)}`,
  );
}

/**
 * Starts dist/src/main.js on a free loopback port with a fresh SQLite file and
 * file store under `runDir`; the CPU-profile hook is preloaded but stays idle
 * until it gets SIGWINCH.
 */
export async function startService({
  root,
  runDir,
  logPath,
  profileDir,
  hookPath,
  imageSizeCap,
  log,
  workers = 1,
  extraEnv = {},
  databaseUrl,
}) {
  const port = await freePort();
  const command = startNodeCommand(root);
  const env = {
    ...command.env,
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl ?? `sqlite:${join(runDir, 'glance.sqlite')}`,
    FILESYSTEM_STORE_DATADIR: join(runDir, 'store'),
    DEFAULT_STORE: 'file',
    AUTH_STRATEGY: 'noauth',
    LOG_LEVEL: 'warn',
    NOTIFICATION_DRIVER: 'noop',
    IMAGE_SIZE_CAP: String(imageSizeCap),
    BENCH_CPU_PROF_DIR: profileDir,
    WORKERS: String(workers),
    ...extraEnv,
  };
  const logFd = openSync(logPath, 'w');
  const child = track(
    spawn(
      process.execPath,
      [
        ...command.flags,
        // e.g. BENCH_SERVICE_NODE_ARGS=--trace-gc to look into a slow phase.
        ...(process.env.BENCH_SERVICE_NODE_ARGS ?? '')
          .split(/\s+/)
          .filter(Boolean),
        '--import',
        pathToFileURL(hookPath).href,
        'dist/src/main.js',
      ],
      {
        cwd: root,
        env,
        stdio: ['ignore', logFd, logFd],
      },
    ),
  );
  closeSync(logFd);
  const started = performance.now();
  try {
    await waitUntilAnswers(port, () => isRunning(child), 60_000);
  } catch (err) {
    const tail = readFileSync(logPath, 'utf8').slice(-3000);
    child.kill('SIGKILL');
    throw new Error(
      `${err.message}\n--- service log (${logPath}) ---\n${tail}`,
    );
  }
  const service = {
    child,
    pid: child.pid,
    port,
    startupMs: performance.now() - started,
    stopping: false,
    /** Why the service is gone, when it exited without being asked to. */
    died: null,
    assertAlive() {
      if (this.died) throw new Error(this.died);
    },
    async stop() {
      this.stopping = true;
      await stopChild(child);
    },
  };
  child.once('exit', (code, signal) => {
    if (service.stopping) return;
    service.died = `the service exited unexpectedly (code ${code}, signal ${signal}); see ${logPath}`;
    log(`ERROR: ${service.died}`);
  });
  return service;
}
