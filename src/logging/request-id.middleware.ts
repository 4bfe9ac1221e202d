import type { NextFunction, Request, Response } from 'express';
import {
  REQUEST_ID_HEADER,
  requestIdStorage,
  resolveRequestId,
  setRequestId,
} from './request-id.js';

/**
 * Gives every request an id (the caller's when well-formed), returns it in
 * x-openstack-request-id and runs the rest of the request inside its
 * AsyncLocalStorage context so that every log line can carry it.
 */
export function requestIdMiddleware(
  req: Request,
  res: Response,
  next: NextFunction,
): void {
  const id = resolveRequestId(req.headers[REQUEST_ID_HEADER]);
  setRequestId(req, id);
  res.setHeader(REQUEST_ID_HEADER, id);
  requestIdStorage.run(id, next);
}
