import type { Request } from 'express';
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

export const REQUEST_ID_HEADER = 'x-openstack-request-id';

/** The only shape of incoming request id we trust (oslo.middleware's request_id). */
export const REQUEST_ID_PATTERN =
  /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The id of the request being served, for log lines written anywhere during it. */
export const requestIdStorage = new AsyncLocalStorage<string>();

const REQUEST_ID = Symbol('glance.requestId');

type WithRequestId = Request & { [REQUEST_ID]?: string };

export function newRequestId(): string {
  return `req-${randomUUID()}`;
}

/** The caller's X-OpenStack-Request-ID when well-formed, otherwise a fresh id. */
export function resolveRequestId(
  header: string | string[] | undefined,
): string {
  return typeof header === 'string' && REQUEST_ID_PATTERN.test(header)
    ? header
    : newRequestId();
}

export function setRequestId(req: Request, id: string): void {
  (req as WithRequestId)[REQUEST_ID] = id;
}

/** The id the request-id middleware gave this request (a fresh one when it did not run). */
export function requestIdOf(req: Request): string {
  const withId = req as WithRequestId;
  withId[REQUEST_ID] ??= newRequestId();
  return withId[REQUEST_ID];
}

export function currentRequestId(): string | undefined {
  return requestIdStorage.getStore();
}
