import { Injectable } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { ApiError } from '../common/api-error.js';
import type { RequestContext } from '../common/request-context.js';
import { AppConfig } from '../config/app-config.js';
import { PolicyService, credentialsOf } from './policy.service.js';
import { PropertyProtectionRules, type PropertyOperation } from './property-protection-rules.js';

/**
 * Glance's property protections (PROPERTY_PROTECTION_FILE): which roles or
 * policies may create, read, update and delete which properties. Disabled
 * when no file is configured; an invalid file stops the service at boot.
 */
@Injectable()
export class PropertyProtectionService {
  private readonly rules: PropertyProtectionRules | null;

  constructor(
    config: AppConfig,
    private readonly policy: PolicyService,
  ) {
    const file = config.PROPERTY_PROTECTION_FILE;
    if (!file) {
      this.rules = null;
      return;
    }
    try {
      this.rules = PropertyProtectionRules.parse(
        readFileSync(file, 'utf8'),
        config.PROPERTY_PROTECTION_RULE_FORMAT,
        policy.current,
      );
    } catch (err) {
      throw new Error(`Property protection file ${file} is invalid: ${(err as Error).message}`);
    }
  }

  get enabled(): boolean {
    return this.rules !== null;
  }

  private allowed(ctx: RequestContext, name: string, op: PropertyOperation): boolean {
    // Policies-format rules follow POLICY_FILE reloads, as Glance's enforcer does.
    return this.rules === null || this.rules.check(name, op, credentialsOf(ctx), this.policy.current);
  }

  /** Properties the caller may read; the rest are silently left out. */
  readable(ctx: RequestContext, properties: Record<string, string | null>): Record<string, string | null> {
    if (!this.rules) return properties;
    const out: Record<string, string | null> = {};
    for (const [k, v] of Object.entries(properties)) if (this.allowed(ctx, k, 'read')) out[k] = v;
    return out;
  }

  enforceCreate(ctx: RequestContext, names: Iterable<string>): void {
    for (const name of names) {
      if (!this.allowed(ctx, name, 'create')) throw ApiError.forbidden(`Property '${name}' is protected`);
    }
  }

  /**
   * The seed's update rules: changing a property needs read and update;
   * an unchanged value needs read only (so values cannot be probed).
   */
  enforceUpdate(
    ctx: RequestContext,
    names: Iterable<string>,
    proposed: Record<string, string | null>,
    original: Record<string, string | null>,
  ): void {
    for (const name of names) {
      const canRead = this.allowed(ctx, name, 'read');
      const changed = proposed[name] !== original[name];
      if (!canRead || (changed && !this.allowed(ctx, name, 'update'))) {
        throw ApiError.forbidden(`Property '${name}' is protected`);
      }
    }
  }

  /**
   * Deleting needs read and delete. A property the caller cannot read is
   * kept as it was (it could not have known to send it).
   */
  enforceDelete(
    ctx: RequestContext,
    names: Iterable<string>,
    proposed: Record<string, string | null>,
    original: Record<string, string | null>,
  ): void {
    for (const name of names) {
      if (!this.allowed(ctx, name, 'read')) {
        proposed[name] = original[name];
      } else if (!this.allowed(ctx, name, 'delete')) {
        throw ApiError.forbidden(`Property '${name}' is protected`);
      }
    }
  }
}
