import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Registry } from 'prom-client';

/** Totals the cache reports at scrape time (read from its shared index). */
export interface CacheTotals {
  entries: number;
  size: number;
  writable: boolean;
}

/** glance_image_cache_*: hits, misses, bytes each way, write failures, size and entries. */
@Injectable()
export class CacheMetrics {
  readonly hits: Counter;
  readonly misses: Counter;
  readonly bytesServed: Counter;
  readonly backendBytes: Counter;
  readonly writeFailures: Counter;
  private totals: (() => CacheTotals) | null = null;

  constructor(registry: Registry) {
    const counter = (name: string, help: string) =>
      new Counter({ name, help, registers: [registry] });
    this.hits = counter(
      'glance_image_cache_hits_total',
      "Downloads served from this node's image cache.",
    );
    this.misses = counter(
      'glance_image_cache_misses_total',
      'Downloads of cacheable images not in the cache.',
    );
    this.bytesServed = counter(
      'glance_image_cache_served_bytes_total',
      'Image bytes sent to clients from the cache (entries and growing fills).',
    );
    this.backendBytes = counter(
      'glance_image_cache_backend_bytes_total',
      'Image bytes read from stores for cache misses (fills and fallbacks).',
    );
    this.writeFailures = counter(
      'glance_image_cache_write_failures_total',
      'Cache fills abandoned because the cache folder could not be written.',
    );
    const read = () => this.totals?.() ?? null;
    // Several workers: size and entries are the node's (one cache folder), not summed;
    // writable is 0 when any worker sees the folder unwritable.
    const gauge = (
      name: string,
      help: string,
      pick: (t: CacheTotals) => number,
      aggregator: 'first' | 'min' = 'first',
    ) =>
      new Gauge({
        name,
        help,
        aggregator,
        registers: [registry],
        collect() {
          const totals = read();
          if (totals) this.set(pick(totals));
        },
      });
    gauge(
      'glance_image_cache_size_bytes',
      'Bytes held by the cache entries of this node.',
      (t) => t.size,
    );
    gauge(
      'glance_image_cache_entries',
      'Cache entries on this node.',
      (t) => t.entries,
    );
    gauge(
      'glance_image_cache_writable',
      '1 when the cache folder accepts writes, 0 when degraded.',
      (t) => (t.writable ? 1 : 0),
      'min',
    );
  }

  /** The cache registers how to read its totals (only when it is enabled). */
  reportTotals(read: () => CacheTotals): void {
    this.totals = read;
  }
}
