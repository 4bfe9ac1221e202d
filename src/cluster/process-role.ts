import cluster from 'node:cluster';

/**
 * Which part this process plays on its node: `single` (WORKERS=1, one process
 * does everything, as before), `primary` (supervises workers, does the
 * once-per-node work, serves no HTTP) or `worker` (serves HTTP only).
 */
export type ProcessRole = 'single' | 'primary' | 'worker';

let primary = false;

/** Called by the primary before it builds its application context. */
export function becomePrimary(): void {
  primary = true;
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
