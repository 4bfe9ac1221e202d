/** Keys that may carry store credentials: they never leave the service. */
export const REDACTED_KEYS = new Set(['location', 'location_data', 'locations']);

/** A deep copy of `value` without location keys at any depth. */
export function redactLocations<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => redactLocations(v)) as T;
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  if (Buffer.isBuffer(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (!REDACTED_KEYS.has(k)) out[k] = redactLocations(v);
  }
  return out as T;
}
