import {
  Catch,
  HttpException,
  Logger,
  type ArgumentsHost,
  type ExceptionFilter,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import { STATUS_CODES } from 'node:http';
import { RegistryError, RegistryErrorCode } from '../registry/registry.error.js';
import { StoreError, StoreErrorCode } from '../stores/store.error.js';
import { ApiError, ApiErrorCode } from './api-error.js';

const STORE_STATUS: Record<StoreErrorCode, ApiErrorCode> = {
  [StoreErrorCode.NotFound]: ApiErrorCode.NotFound,
  [StoreErrorCode.Unavailable]: ApiErrorCode.ServiceUnavailable,
  [StoreErrorCode.StorageFull]: ApiErrorCode.PayloadTooLarge,
  [StoreErrorCode.WriteDenied]: ApiErrorCode.ServiceUnavailable,
  [StoreErrorCode.BadLocation]: ApiErrorCode.BadRequest,
  [StoreErrorCode.UnknownScheme]: ApiErrorCode.BadRequest,
  [StoreErrorCode.ReadOnly]: ApiErrorCode.BadRequest,
  [StoreErrorCode.Duplicate]: ApiErrorCode.Conflict,
  [StoreErrorCode.Forbidden]: ApiErrorCode.BadRequest,
};

/** Connection-level failures of PostgreSQL, MariaDB or SQLite: the database, not the request, is at fault. */
const DATABASE_DOWN_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'ER_CON_COUNT_ERROR',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '08000',
  '08001',
  '08003',
  '08006',
  'SQLITE_BUSY',
  'SQLITE_CANTOPEN',
]);

function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: unknown; driverError?: { code?: unknown }; message?: unknown };
  const code = e?.driverError?.code ?? e?.code;
  if (typeof code === 'string' && DATABASE_DOWN_CODES.has(code)) return true;
  return typeof e?.message === 'string' && /Connection terminated|connection is not (open|established)|Pool is closed/i.test(e.message);
}

/** How long a refused upload's remaining body is read and dropped before the connection is cut. */
const DISCARD_BODY_MS = 30_000;

/**
 * A refused upload's client may still be sending: clients such as
 * python-requests read the answer only after the whole body went out, and a
 * closed socket turns the answer into a broken pipe. Drop the rest of the body
 * (as eventlet's wsgi server does for Glance), bounded in time.
 */
function discardBody(req: Request): void {
  const timer = setTimeout(() => req.socket.destroy(), DISCARD_BODY_MS);
  timer.unref();
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
  req.resume();
}

const REGISTRY_STATUS: Record<RegistryErrorCode, ApiErrorCode> = {
  [RegistryErrorCode.NotFound]: ApiErrorCode.NotFound,
  [RegistryErrorCode.Duplicate]: ApiErrorCode.Conflict,
  [RegistryErrorCode.Conflict]: ApiErrorCode.Conflict,
  [RegistryErrorCode.InvalidMarker]: ApiErrorCode.BadRequest,
  [RegistryErrorCode.QuotaExceeded]: ApiErrorCode.PayloadTooLarge,
};

/**
 * The one place errors become HTTP: Glance's status codes with a plain-text
 * body in webob's format ("400 Bad Request\n\n<message>\n\n"). Anything
 * unexpected is logged and answered 500 without internals.
 */
@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(error: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const req = http.getRequest<Request>();
    const res = http.getResponse<Response>();
    const { status, message, headers } = this.describe(error, req);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (!req.complete && !req.destroyed) discardBody(req);
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    const body = `${status} ${STATUS_CODES[status] ?? ''}\n\n${message}\n\n`;
    res.status(status).type('text/plain; charset=UTF-8');
    if (req.method === 'HEAD') res.end();
    else res.send(body);
  }

  private describe(
    error: unknown,
    req: Request,
  ): { status: number; message: string; headers: Record<string, string> } {
    if (error instanceof ApiError) {
      if (error.code >= 500) this.logger.error(`${req.method} ${req.url}: ${error.message}`);
      return { status: error.code, message: error.message, headers: error.headers };
    }
    if (error instanceof StoreError) {
      const status = STORE_STATUS[error.code] ?? 500;
      if (status >= 500) {
        // The detail may name internal endpoints: it goes to the log only.
        this.logger.error(`${req.method} ${req.url}: store: ${error.message}`);
        return { status, message: 'The image store is unavailable; try again later.', headers: {} };
      }
      return { status, message: error.message, headers: {} };
    }
    if (error instanceof RegistryError) {
      return { status: REGISTRY_STATUS[error.code], message: error.message, headers: {} };
    }
    if (error instanceof HttpException) {
      const response = error.getResponse();
      const message =
        typeof response === 'string'
          ? response
          : String((response as { message?: unknown }).message ?? error.message);
      return { status: error.getStatus(), message, headers: {} };
    }
    const status = (error as { status?: number; statusCode?: number })?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // Express/body-parser errors such as malformed JSON.
      return { status, message: (error as Error).message, headers: {} };
    }
    if (isDatabaseUnavailable(error)) {
      this.logger.error(`${req.method} ${req.url}: database unavailable: ${(error as Error).message}`);
      return {
        status: 503,
        message: 'The image registry database is unavailable; try again later.',
        headers: { 'Retry-After': '5' },
      };
    }
    this.logger.error(
      `${req.method} ${req.url}: ${(error as Error)?.stack ?? String(error)}`,
    );
    return { status: 500, message: 'The server has either erred or is incapable of performing the requested operation.', headers: {} };
  }
}
