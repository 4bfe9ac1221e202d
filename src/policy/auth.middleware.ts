import { Injectable, Logger, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { ApiError, ApiErrorCode } from '../common/api-error.js';
import { RequestContext } from '../common/request-context.js';
import { attachContext } from '../common/request-context.accessor.js';
import { AppConfig } from '../config/app-config.js';
import { requestIdOf } from '../logging/request-id.js';
import { KeystoneAuthError, KeystoneTokenValidator } from './keystone-token.validator.js';

function header(req: Request, name: string): string | null {
  const value = req.headers[name];
  const text = Array.isArray(value) ? value[0] : value;
  return text === undefined || text.trim() === '' ? null : text.trim();
}

const UNAUTHORIZED =
  'This server could not verify that you are authorized to access the document you requested.';

/**
 * Builds the RequestContext of every request according to AUTH_STRATEGY:
 * - noauth trusts the identity headers as sent (no X-Roles = admin);
 * - trusted-headers trusts them only when an auth proxy (keystonemiddleware)
 *   marked the request `X-Identity-Status: Confirmed`, else 401;
 * - keystone validates X-Auth-Token against Keystone v3 (401 invalid, 503 unreachable).
 */
@Injectable()
export class AuthMiddleware implements NestMiddleware {
  private readonly logger = new Logger('Auth');
  private readonly keystone: KeystoneTokenValidator | null = null;

  constructor(private readonly config: AppConfig) {
    if (config.AUTH_STRATEGY === 'noauth') {
      this.logger.warn(
        'AUTH_STRATEGY=noauth: every caller is trusted as whoever its X-Tenant-Id/X-Roles headers claim. Do not expose this service.',
      );
    }
    if (config.AUTH_STRATEGY === 'keystone') {
      if (!config.KEYSTONE_URL) throw new Error('KEYSTONE_URL must be set when AUTH_STRATEGY=keystone');
      this.keystone = new KeystoneTokenValidator({
        url: config.KEYSTONE_URL,
        serviceUser: config.KEYSTONE_SERVICE_USER,
        servicePassword: config.KEYSTONE_SERVICE_PASSWORD,
        serviceProject: config.KEYSTONE_SERVICE_PROJECT,
        serviceUserDomain: config.KEYSTONE_SERVICE_USER_DOMAIN,
        serviceProjectDomain: config.KEYSTONE_SERVICE_PROJECT_DOMAIN,
        cacheTtlMs: config.KEYSTONE_CACHE_TTL * 1000,
      });
    }
  }

  use(req: Request, _res: Response, next: NextFunction): void {
    const requestId = requestIdOf(req);
    switch (this.config.AUTH_STRATEGY) {
      case 'keystone':
        this.fromKeystone(req, requestId).then(
          (ctx) => {
            attachContext(req, ctx);
            next();
          },
          (err: unknown) => next(err),
        );
        return;
      case 'trusted-headers':
        if (header(req, 'x-identity-status') !== 'Confirmed') {
          return next(new ApiError(ApiErrorCode.Unauthorized, UNAUTHORIZED));
        }
        attachContext(req, this.fromHeaders(req, requestId));
        return next();
      default:
        attachContext(req, this.fromHeaders(req, requestId));
        return next();
    }
  }

  private fromHeaders(req: Request, requestId: string): RequestContext {
    const rolesHeader = header(req, 'x-roles');
    const token = header(req, 'x-auth-token');
    if (rolesHeader === null && this.config.AUTH_STRATEGY === 'noauth') {
      // Glance's unauthenticated context: an admin with no tenant.
      return new RequestContext(null, null, [], true, this.config.OWNER_IS_TENANT, token, requestId);
    }
    const roles = (rolesHeader ?? '')
      .split(',')
      .map((r) => r.trim().toLowerCase())
      .filter(Boolean);
    return this.context(
      header(req, 'x-tenant-id') ?? header(req, 'x-project-id'),
      header(req, 'x-user-id'),
      roles,
      token,
      requestId,
    );
  }

  private async fromKeystone(req: Request, requestId: string): Promise<RequestContext> {
    const token = header(req, 'x-auth-token');
    if (!token) throw new ApiError(ApiErrorCode.Unauthorized, UNAUTHORIZED);
    try {
      const identity = await this.keystone!.validate(token);
      return this.context(identity.projectId, identity.userId, identity.roles, token, requestId);
    } catch (err) {
      if (err instanceof KeystoneAuthError && err.kind === 'invalid') {
        throw new ApiError(ApiErrorCode.Unauthorized, UNAUTHORIZED);
      }
      this.logger.error(`Keystone unavailable: ${(err as Error).message}`);
      throw new ApiError(ApiErrorCode.ServiceUnavailable, 'The identity service is unavailable; try again later.');
    }
  }

  private context(
    tenant: string | null,
    user: string | null,
    roles: string[],
    token: string | null,
    requestId: string,
  ): RequestContext {
    const isAdmin = roles.includes(this.config.ADMIN_ROLE.trim().toLowerCase());
    return new RequestContext(tenant, user, roles, isAdmin, this.config.OWNER_IS_TENANT, token, requestId);
  }
}
