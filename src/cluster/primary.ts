import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ThrottlerStorageService } from '@nestjs/throttler';
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { AppConfig } from '../config/app-config.js';
import { UploadReaperService } from '../images/upload/upload-reaper.service.js';
import { createAppLogger } from '../logging/app-logger.js';
import { servePrimary } from './cluster-ipc.js';
import {
  THROTTLE_REQUEST,
  type ThrottleIncrement,
} from './cluster-throttler.storage.js';
import { METRICS_REQUEST } from './primary-requests.js';
import { PrimaryModule } from './primary.module.js';
import { becomePrimary, WORKER_SLOT_ENV } from './process-role.js';

/** A worker that dies sooner than this after its start is restarted after a pause (no busy crash loop). */
const QUICK_DEATH_MS = 5000;
const RESTART_PAUSE_MS = 1000;
/** Beyond SHUTDOWN_TIMEOUT, time a worker gets to kill its leftover uploads before SIGKILL. */
const KILL_GRACE_MS = 10_000;

/**
 * The primary of a node with WORKERS > 1: migrates, cleans the node's
 * leftovers, starts the workers, restarts dead ones (killing their uploads),
 * runs the scrubber, heartbeat and reaper once, holds the rate-limit counters
 * and aggregates /metrics; on SIGTERM drains every worker, then exits 0.
 */
export async function runPrimary(config: AppConfig): Promise<void> {
  becomePrimary();
  const logger = new Logger('Primary');
  // Bootstrapping runs the migrations and kills this node's leftover uploads, before any worker exists.
  const app = await NestFactory.createApplicationContext(PrimaryModule, {
    logger: createAppLogger(config),
  });
  const reaper = app.get(UploadReaperService);
  const throttle = new ThrottlerStorageService();
  const aggregator = new AggregatorRegistry();
  servePrimary({
    [THROTTLE_REQUEST]: (payload) => {
      const p = payload as ThrottleIncrement;
      return throttle.increment(
        p.key,
        p.ttl,
        p.limit,
        p.blockDuration,
        p.throttlerName,
      );
    },
    [METRICS_REQUEST]: () => aggregator.clusterMetrics(),
  });

  let stopping = false;
  const startedAt = new Map<Worker, number>();
  const slots = new Map<Worker, number>();
  // A restarted worker keeps its slot, so slot 0 (cache maintenance) always has a process.
  const fork = (slot: number) => {
    // A restart delayed past the start of a shutdown would outlive the primary.
    if (stopping) return;
    const worker = cluster.fork({ [WORKER_SLOT_ENV]: String(slot) });
    startedAt.set(worker, Date.now());
    slots.set(worker, slot);
  };

  cluster.on('exit', (worker, code, signal) => {
    const pid = String(worker.process.pid);
    const lived = Date.now() - (startedAt.get(worker) ?? 0);
    const slot = slots.get(worker) ?? 0;
    startedAt.delete(worker);
    slots.delete(worker);
    if (stopping) return;
    logger.error(
      `Worker ${pid} died (${signal ? `signal ${signal}` : `exit code ${code}`}); killing its uploads and starting a new worker`,
    );
    reaper
      .reapWorker(pid)
      .catch((err: unknown) =>
        logger.error(
          `Could not kill the uploads of worker ${pid}: ${(err as Error).message}`,
        ),
      );
    if (lived < QUICK_DEATH_MS) setTimeout(() => fork(slot), RESTART_PAUSE_MS);
    else fork(slot);
  });

  let listening = 0;
  cluster.on('listening', () => {
    listening++;
    if (listening === config.WORKERS) {
      logger.log(
        `Glance v1 API listening on http://${config.HOST}:${config.PORT} with ${config.WORKERS} workers`,
      );
    }
  });

  const shutdown = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    const workers = [...startedAt.keys()];
    logger.log(`${signal}: draining ${workers.length} worker(s)`);
    const exits = workers.map(
      (w) =>
        new Promise<void>((done) =>
          w.isDead() ? done() : w.once('exit', () => done()),
        ),
    );
    for (const w of workers) if (!w.isDead()) w.process.kill('SIGTERM');
    const deadline = setTimeout(
      () => {
        for (const w of workers) {
          if (w.isDead()) continue;
          logger.warn(
            `Worker ${w.process.pid} did not stop in time; killing it`,
          );
          w.process.kill('SIGKILL');
        }
      },
      config.SHUTDOWN_TIMEOUT * 1000 + KILL_GRACE_MS,
    );
    await Promise.all(exits);
    clearTimeout(deadline);
    // Uploads of a worker that had to be killed are left saving: no worker runs any now.
    await reaper
      .reapNode()
      .catch((err: unknown) =>
        logger.error(`Final reap failed: ${(err as Error).message}`),
      );
    await app.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  for (let slot = 0; slot < config.WORKERS; slot++) fork(slot);
}

/**
 * Worker side: a worker whose primary is gone (crashed, SIGKILL) drains and
 * exits too. The listeners stay: a second SIGTERM (the whole process group
 * signalled, then the primary's own) must not end a draining worker at once.
 */
export function followPrimary(): { stopRequested: () => boolean } {
  let signalled = false;
  process.on('SIGTERM', () => (signalled = true));
  process.on('SIGINT', () => (signalled = true));
  process.on('disconnect', () => {
    if (!signalled) process.kill(process.pid, 'SIGTERM');
  });
  // A worker signalled while it was still starting (before Nest's own
  // handlers) asks this when they are in place, and stops instead of listening.
  return { stopRequested: () => signalled };
}
