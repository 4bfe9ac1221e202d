import { Injectable, Logger } from '@nestjs/common';
import { readFileSync, statSync } from 'node:fs';
import { ApiError } from '../common/api-error.js';
import type { RequestContext } from '../common/request-context.js';
import { AppConfig } from '../config/app-config.js';
import {
  DEFAULT_GLANCE_POLICY,
  PolicyRules,
  type PolicyCredentials,
} from './policy-rules.js';

/** How often POLICY_FILE's modification time is looked at (cheap stat, no restart needed). */
const RELOAD_CHECK_MS = 1000;

/**
 * Enforces Glance policy actions (get_images, add_image, ...) against POLICY_FILE
 * or Glance's permissive default. The file is re-read when it changes; a broken
 * edit is logged and the last good policy stays in force.
 */
@Injectable()
export class PolicyService {
  private readonly logger = new Logger('Policy');
  private rules: PolicyRules;
  private fileMtime = 0;
  private lastCheck = 0;

  constructor(private readonly config: AppConfig) {
    this.rules = config.POLICY_FILE
      ? this.load(config.POLICY_FILE, true)!
      : PolicyRules.parse(DEFAULT_GLANCE_POLICY);
  }

  /** The rule set now in force (property protections in policies format evaluate against it). */
  get current(): PolicyRules {
    this.reloadIfChanged();
    return this.rules;
  }

  check(
    ctx: RequestContext,
    action: string,
    target: Record<string, unknown> = {},
  ): boolean {
    return this.current.enforce(action, credentialsOf(ctx), target);
  }

  /** Throws a 403 ApiError when `action` is not allowed. */
  enforce(
    ctx: RequestContext,
    action: string,
    target: Record<string, unknown> = {},
  ): void {
    if (!this.check(ctx, action, target)) {
      throw ApiError.forbidden(
        `You are not authorized to complete ${action} action.`,
      );
    }
  }

  private reloadIfChanged(): void {
    const file = this.config.POLICY_FILE;
    if (!file) return;
    const now = Date.now();
    if (now - this.lastCheck < RELOAD_CHECK_MS) return;
    this.lastCheck = now;
    const rules = this.load(file, false);
    if (rules) this.rules = rules;
  }

  /** Parses the file when it changed; at boot (`strict`) a bad file is fatal. */
  private load(file: string, strict: boolean): PolicyRules | null {
    try {
      const mtime = statSync(file).mtimeMs;
      if (!strict && mtime === this.fileMtime) return null;
      const rules = PolicyRules.parse(readFileSync(file, 'utf8'));
      this.fileMtime = mtime;
      if (!strict) this.logger.log(`Reloaded policy from ${file}`);
      return rules;
    } catch (err) {
      const message = `Policy file ${file} is invalid: ${(err as Error).message}`;
      if (strict) throw new Error(message);
      this.logger.error(`${message}; keeping the previous policy`);
      this.fileMtime = statMtime(file);
      return null;
    }
  }
}

function statMtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

export function credentialsOf(ctx: RequestContext): PolicyCredentials {
  return {
    roles: [...ctx.roles],
    tenant: ctx.tenant,
    user: ctx.user,
    isAdmin: ctx.isAdmin,
  };
}
