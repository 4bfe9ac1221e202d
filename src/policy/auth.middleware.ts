import { Injectable, Logger, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { randomUUID } from 'node:crypto';
import { ApiError, ApiErrorCode } from '../common/api-error.js';
import { RequestContext } from '../common/request-context.js';
import { attachContext } from '../common/request-context.accessor.js';
import { AppConfig } from '../config/app-config.js';

function header(req: Request, name: string): string | null {
  const value = req.headers[name];
  const text = Array.isArray(value) ? value[0] : value;
  return text === undefined || text.trim() === '' ? null : text.trim();
}

/**
 * Builds the RequestContext of every request according to AUTH_STRATEGY.
 * noauth trusts the identity headers as sent; trusted-headers trusts them only
 * when an auth proxy (keystonemiddleware) marked the request Confirmed.
 */
@Injectable()
export class AuthMiddleware implements NestMiddleware {
  private readonly logger = new Logger('Auth');

  constructor(private readonly config: AppConfig) {
    if (config.AUTH_STRATEGY === 'noauth') {
      this.logger.warn(
        'AUTH_STRATEGY=noauth: every caller is trusted as whoever its X-Tenant-Id/X-Roles headers claim. Do not expose this service.',
      );
    }
  }

  use(req: Request, _res: Response, next: NextFunction): void {
    const requestId = `req-${randomUUID()}`;
    if (
      this.config.AUTH_STRATEGY === 'trusted-headers' &&
      header(req, 'x-identity-status') !== 'Confirmed'
    ) {
      return next(
        new ApiError(
          ApiErrorCode.Unauthorized,
          'This server could not verify that you are authorized to access the document you requested.',
        ),
      );
    }
    attachContext(req, this.fromHeaders(req, requestId));
    next();
  }

  private fromHeaders(req: Request, requestId: string): RequestContext {
    const rolesHeader = header(req, 'x-roles');
    const tenant = header(req, 'x-tenant-id') ?? header(req, 'x-project-id');
    const user = header(req, 'x-user-id');
    const token = header(req, 'x-auth-token');
    if (rolesHeader === null && this.config.AUTH_STRATEGY === 'noauth') {
      // Glance's unauthenticated context: an admin with no tenant.
      return new RequestContext(
        tenant,
        user,
        [],
        true,
        this.config.OWNER_IS_TENANT,
        token,
        requestId,
      );
    }
    const roles = (rolesHeader ?? '')
      .split(',')
      .map((r) => r.trim().toLowerCase())
      .filter(Boolean);
    const isAdmin = roles.includes(this.config.ADMIN_ROLE.trim().toLowerCase());
    return new RequestContext(
      tenant,
      user,
      roles,
      isAdmin,
      this.config.OWNER_IS_TENANT,
      token,
      requestId,
    );
  }
}
