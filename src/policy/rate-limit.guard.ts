import { Injectable, type ExecutionContext } from '@nestjs/common';
import { ThrottlerGuard, type ThrottlerLimitDetail } from '@nestjs/throttler';
import type { Request } from 'express';
import { ApiError, ApiErrorCode } from '../common/api-error.js';
import { contextOf } from '../common/request-context.accessor.js';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * RATE_LIMIT_PER_MINUTE for mutating requests, counted per client (tenant,
 * else address) across all routes; reads are never limited. 429 + Retry-After.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  /**
   * Reads answer at once, without the throttler's promise chain on every
   * GET/HEAD. CanActivate allows a plain boolean (Nest's guards consumer takes
   * one as it is); ThrottlerGuard only narrowed the declared type.
   */
  override canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request>();
    if (!MUTATING.has(req.method)) return true as unknown as Promise<boolean>;
    return super.canActivate(context);
  }

  protected override async shouldSkip(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request>();
    return !MUTATING.has(req.method) || this.throttlers.every((t) => !t.limit);
  }

  protected override async getTracker(req: Record<string, any>): Promise<string> {
    // The authenticated tenant: with keystone, X-Tenant-Id is client-sent and would reset the budget.
    const tenant = authenticatedTenant(req as Request);
    return tenant ? `tenant:${tenant}` : `ip:${req.ip ?? req.socket?.remoteAddress}`;
  }

  protected override generateKey(_context: ExecutionContext, tracker: string): string {
    return `mutating:${tracker}`;
  }

  protected override async throwThrottlingException(
    _context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    throw new ApiError(
      ApiErrorCode.TooManyRequests,
      `Rate limit exceeded: at most ${detail.limit} changes per minute.`,
      { 'Retry-After': String(Math.max(1, Math.ceil(detail.timeToBlockExpire))) },
    );
  }
}

/** The tenant the auth middleware established; none outside /v1 (no context there). */
function authenticatedTenant(req: Request): string | null {
  try {
    return contextOf(req).tenant;
  } catch {
    return null;
  }
}
