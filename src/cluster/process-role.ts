import cluster from 'node:cluster';

/**
 * Which part this process plays on its node: `single` (WORKERS=1, one process
 * does everything, as before), `primary` (supervises workers, does the
 * once-per-node work, serves no HTTP) or `worker` (serves HTTP only).
 */
export type ProcessRole = 'single' | 'primary' | 'worker';

let primary = false;
let oneShot = false;

/** Env variable through which the primary gives each worker its slot (0..WORKERS-1), kept across restarts. */
export const WORKER_SLOT_ENV = 'GLANCE_WORKER_SLOT';

/** Called by the primary before it builds its application context. */
export function becomePrimary(): void {
  primary = true;
}

/** Called by one-shot commands (`npm run cache:*`): they start no periodic work. */
export function becomeOneShotTask(): void {
  oneShot = true;
}

export function processRole(): ProcessRole {
  if (cluster.isWorker) return 'worker';
  return primary ? 'primary' : 'single';
}

/** True where the once-per-node work (migrations, scrubber, reaper, heartbeat) belongs. */
export function runsNodeDuties(): boolean {
  return processRole() !== 'worker';
}

/** This process's identity within its node, recorded as the owner of the uploads it runs. */
export function workerIdentity(): string {
  return String(process.pid);
}

/**
 * True in the one process per node that runs the periodic work needing the
 * whole application (image cache prune, clean, prefetch): the single process,
 * or the worker in slot 0 (the primary has no stores or cache).
 */
export function runsNodeAppDuties(): boolean {
  if (oneShot) return false;
  const role = processRole();
  if (role === 'single') return true;
  return role === 'worker' && process.env[WORKER_SLOT_ENV] === '0';
}
