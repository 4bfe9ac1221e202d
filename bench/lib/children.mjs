import { fork, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';

/** Every child we started and every temp dir we made, so exit paths can clean up. */
const children = new Set();
const tempDirs = new Set();

/** `group`: the child leads its own process group (spawned detached); kill the whole group. */
export function track(child, { group = false } = {}) {
  child.benchGroup = group;
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function registerTempDir(dir) {
  tempDirs.add(dir);
}

export function isRunning(child) {
  return child.exitCode === null && child.signalCode === null;
}

/** Synchronous so it also works from process.on('exit'). */
export function cleanupSync() {
  for (const child of children) {
    try {
      if (child.benchGroup) process.kill(-child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  children.clear();
  for (const dir of tempDirs) {
    rmSync(dir, { recursive: true, force: true });
  }
  tempDirs.clear();
}

export function installExitHandlers() {
  process.on('exit', cleanupSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      console.error(`\nbench: ${signal}, stopping children and cleaning up`);
      cleanupSync();
      process.exit(130);
    });
  }
}

/** SIGTERM, then SIGKILL after `graceMs`. Resolves once the child exited. */
export async function stopChild(child, graceMs = 5000) {
  if (!isRunning(child)) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Runs a command to completion; never rejects on a non-zero exit. */
export function run(cmd, args, { timeoutMs = 600_000, cwd, env } = {}) {
  return new Promise((resolve, reject) => {
    // Own process group, so a timeout or Ctrl-C also stops grandchildren (npm -> nest -> tsc).
    const child = track(
      spawn(cmd, args, {
        cwd,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      }),
      { group: true },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Forks a bench helper module with an IPC channel. */
export function forkHelper(modulePath, args, options = {}) {
  return track(
    fork(modulePath, args, {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      ...options,
    }),
  );
}

/** Resolves with the first IPC message matching `predicate`; rejects if the child exits first. */
export function waitForMessage(child, predicate, timeoutMs) {
  return new Promise((resolve, reject) => {
    const onMessage = (msg) => {
      if (!predicate(msg)) return;
      done();
      resolve(msg);
    };
    const onExit = (code, signal) => {
      done();
      reject(
        new Error(
          `child exited (code ${code}, signal ${signal}) before answering`,
        ),
      );
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`child did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
