import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { summarizeCpuProfile } from './cpu-profile-summary.mjs';

function listProfiles(dir) {
  return existsSync(dir)
    ? readdirSync(dir).filter((n) => n.endsWith('.cpuprofile'))
    : [];
}

/**
 * One CPU-profile window of the service's main thread, driven through the
 * preloaded cpu-profile.hook.mjs (SIGWINCH toggles the profiler). Worker
 * threads (e.g. upload hashing) are not in the profile.
 */
export class ProfileWindow {
  constructor(service, dir) {
    this.service = service;
    this.dir = dir;
    this.before = new Set();
  }

  start() {
    this.before = new Set(listProfiles(this.dir));
    this.service.child.kill('SIGWINCH');
  }

  /** Stops the profiler; resolves with the summary, or null if no profile appeared. */
  async stop() {
    this.service.child.kill('SIGWINCH');
    for (let i = 0; i < 100; i++) {
      const fresh = listProfiles(this.dir).find((n) => !this.before.has(n));
      if (fresh) return summarizeCpuProfile(join(this.dir, fresh));
      await new Promise((r) => setTimeout(r, 100));
    }
    return null;
  }
}

/** Profiles the service while `fn` runs; resolves with { result, profile }. */
export async function profileDuring(service, dir, fn) {
  const window = new ProfileWindow(service, dir);
  window.start();
  try {
    const result = await fn();
    return { result, profile: await window.stop() };
  } catch (err) {
    await window.stop();
    throw err;
  }
}

/** BENCH_CPU_PROF: 1 always, 0 never, otherwise only where a target was missed. */
export function shouldProfile(config, missed) {
  if (config.cpuProf === '0') return false;
  return config.cpuProf === '1' || missed;
}
