import type { Request } from 'express';
import { ApiError } from './api-error.js';
import type { RequestContext } from './request-context.js';

const CONTEXT = Symbol('glance.requestContext');

type WithContext = Request & { [CONTEXT]?: RequestContext };

export function attachContext(req: Request, ctx: RequestContext): void {
  (req as WithContext)[CONTEXT] = ctx;
}

/** The caller's context set by the auth middleware; its absence is a server bug. */
export function contextOf(req: Request): RequestContext {
  const ctx = (req as WithContext)[CONTEXT];
  if (!ctx) throw new ApiError(500, 'Request context missing');
  return ctx;
}
