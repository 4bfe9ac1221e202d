import { Logger } from '@nestjs/common';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { currentRequestId, requestIdOf } from './request-id.js';

const STARTED_AT = Symbol('accessLog.startedAt');
const BYTES_BEFORE = Symbol('accessLog.bytesBefore');

/** Status logged for a request whose client closed the connection before any response. */
const CLIENT_CLOSED = 499;

type Timed = Request & { [STARTED_AT]: number; [BYTES_BEFORE]: number };

/** The path without its query string: query values may hold secrets. */
function pathOf(req: Request): string {
  const url = req.originalUrl ?? req.url;
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/**
 * One info line per request once its response is done (or cut short):
 * method, path, status, duration in ms and bytes written to the socket
 * (headers included), and `aborted` when the connection closed before the
 * response was complete. JSON logs get them as fields too; text logs only the
 * message (the request id is in the line's tag when the request's context
 * is still current, else in the message).
 */
export function accessLogMiddleware(format: 'json' | 'text'): RequestHandler {
  const logger = new Logger('AccessLog');

  function onClose(this: Response): void {
    const req = this.req as Timed;
    const durationMs =
      Math.round((performance.now() - req[STARTED_AT]) * 1000) / 1000;
    const bytes = (req.socket?.bytesWritten ?? 0) - req[BYTES_BEFORE];
    const path = pathOf(req);
    // Closed before the response was complete: the client went away (or the
    // connection was cut). statusCode is then only what a handler had set so
    // far, never sent: log 499 (nginx's "client closed request") unless a
    // status line did go out, and mark the line aborted either way.
    const aborted = !this.writableFinished;
    const status =
      aborted && !this.headersSent ? CLIENT_CLOSED : this.statusCode;
    const id = requestIdOf(req);
    const message = `${req.method} ${path} ${status} ${durationMs}ms ${bytes}B${aborted ? ' aborted' : ''}`;
    if (format === 'text') {
      logger.log(currentRequestId() === id ? message : `[${id}] ${message}`);
      return;
    }
    logger.log(message, {
      method: req.method,
      path,
      status,
      duration_ms: durationMs,
      bytes,
      ...(aborted ? { aborted } : {}),
      request_id: id,
    });
  }

  return (req: Request, res: Response, next: NextFunction): void => {
    const timed = req as Timed;
    timed[STARTED_AT] = performance.now();
    timed[BYTES_BEFORE] = req.socket?.bytesWritten ?? 0;
    res.once('close', onClose);
    next();
  };
}
