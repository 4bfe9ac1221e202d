import { Injectable, type ExecutionContext } from '@nestjs/common';
import { ThrottlerGuard, type ThrottlerLimitDetail } from '@nestjs/throttler';
import type { Request } from 'express';
import { ApiError, ApiErrorCode } from '../common/api-error.js';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * RATE_LIMIT_PER_MINUTE for mutating requests, counted per client (tenant,
 * else address) across all routes; reads are never limited. 429 + Retry-After.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  protected override async shouldSkip(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request>();
    return !MUTATING.has(req.method) || this.throttlers.every((t) => !t.limit);
  }

  protected override async getTracker(req: Record<string, any>): Promise<string> {
    const tenant = req.headers?.['x-tenant-id'] ?? req.headers?.['x-project-id'];
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
