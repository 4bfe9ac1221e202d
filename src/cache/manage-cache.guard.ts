import {
  Injectable,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { contextOf } from '../common/request-context.accessor.js';
import { AppConfig } from '../config/app-config.js';
import { PolicyService } from '../policy/policy.service.js';

/**
 * The `manage_image_cache` rule (default `role:admin`). With noauth, a
 * caller without X-Roles is Glance's unauthenticated admin context, which
 * has no roles at all: it may manage the cache too (that is how
 * glance-cache-manage talks to a noauth service). Everyone else goes
 * through the policy; denial is the usual 403.
 */
@Injectable()
export class ManageCacheGuard implements CanActivate {
  constructor(
    private readonly policy: PolicyService,
    private readonly config: AppConfig,
  ) {}

  canActivate(execution: ExecutionContext): boolean {
    const ctx = contextOf(execution.switchToHttp().getRequest());
    const unauthenticatedAdmin =
      this.config.AUTH_STRATEGY === 'noauth' &&
      ctx.isAdmin &&
      ctx.roles.length === 0 &&
      ctx.tenant === null;
    if (!unauthenticatedAdmin) this.policy.enforce(ctx, 'manage_image_cache');
    return true;
  }
}
