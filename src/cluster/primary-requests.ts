/** Requests a worker sends the primary (besides rate-limit increments). */
export const METRICS_REQUEST = 'metrics.node';
