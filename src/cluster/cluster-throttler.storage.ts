import type { ThrottlerStorage } from '@nestjs/throttler';
import { askPrimary } from './cluster-ipc.js';

type ThrottlerStorageRecord = Awaited<
  ReturnType<ThrottlerStorage['increment']>
>;

export const THROTTLE_REQUEST = 'throttler.increment';

export interface ThrottleIncrement {
  key: string;
  ttl: number;
  limit: number;
  blockDuration: number;
  throttlerName: string;
}

/**
 * A worker's rate-limit counters live in the primary (one set per node):
 * every mutating request asks it over the cluster channel.
 */
export class ClusterThrottlerStorage implements ThrottlerStorage {
  increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    const payload: ThrottleIncrement = {
      key,
      ttl,
      limit,
      blockDuration,
      throttlerName,
    };
    return askPrimary<ThrottlerStorageRecord>(THROTTLE_REQUEST, payload);
  }
}
