import {
  Injectable,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { contextOf } from '../common/request-context.accessor.js';
import { POLICY_ACTION } from './policy.decorator.js';
import { PolicyService } from './policy.service.js';

/** Enforces the @Policy() actions of a route; denial is a 403 with the action named. */
@Injectable()
export class PolicyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly policy: PolicyService,
  ) {}

  /** Route metadata never changes after boot: looked up once per handler and class. */
  private readonly actionsByHandler = new WeakMap<
    object,
    { type: object; actions: readonly string[] }
  >();

  canActivate(execution: ExecutionContext): boolean {
    const actions = this.actionsOf(execution);
    if (!actions.length) return true;
    const ctx = contextOf(execution.switchToHttp().getRequest());
    for (const action of actions) this.policy.enforce(ctx, action);
    return true;
  }

  private actionsOf(execution: ExecutionContext): readonly string[] {
    const handler = execution.getHandler();
    const type = execution.getClass();
    const cached = this.actionsByHandler.get(handler);
    if (cached?.type === type) return cached.actions;
    const actions =
      this.reflector.getAllAndOverride<string[] | undefined>(POLICY_ACTION, [
        handler,
        type,
      ]) ?? [];
    this.actionsByHandler.set(handler, { type, actions });
    return actions;
  }
}
