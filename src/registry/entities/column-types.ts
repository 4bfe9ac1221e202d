import type { ValueTransformer } from 'typeorm';

/** PostgreSQL and MySQL drivers return BIGINT as a string; image sizes fit in a double. */
export const bigintToNumber: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | null) =>
    value === null || value === undefined ? null : Number(value),
};

/**
 * Timestamps are stored as fixed-width UTC strings ("2026-11-27T10:22:50.123000"):
 * the format Glance v1 serialises, identical on every database, and ordered
 * lexicographically in time so sort keys and changes-since work everywhere.
 */
export const TIMESTAMP_COLUMN = { type: 'varchar', length: 26 } as const;
