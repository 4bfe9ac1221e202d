export function round(value, digits = 2) {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sortedAscending, p) {
  if (sortedAscending.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sortedAscending.length);
  return sortedAscending[
    Math.min(sortedAscending.length, Math.max(1, rank)) - 1
  ];
}

export const MB = 1e6;
export const MiB = 1024 * 1024;

/** "412.3 MB/s (393.2 MiB/s)" */
export function formatRate(bytesPerSecond) {
  if (!Number.isFinite(bytesPerSecond)) return 'n/a';
  return `${(bytesPerSecond / MB).toFixed(1)} MB/s (${(bytesPerSecond / MiB).toFixed(1)} MiB/s)`;
}
