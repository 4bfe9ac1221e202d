import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_GLANCE_POLICY,
  PolicyParseError,
  PolicyRules,
  type PolicyCredentials,
} from './policy-rules.js';

function creds(overrides: Partial<PolicyCredentials> = {}): PolicyCredentials {
  return {
    roles: ['member'],
    tenant: 'tenant-a',
    user: 'user-a',
    isAdmin: false,
    ...overrides,
  };
}

/** Evaluates a single rule named `r`. */
function allows(
  rule: unknown,
  who: PolicyCredentials = creds(),
  target: Record<string, unknown> = {},
): boolean {
  return PolicyRules.parse(JSON.stringify({ r: rule })).enforce(
    'r',
    who,
    target,
  );
}

function parseError(policy: Record<string, unknown>): PolicyParseError {
  try {
    PolicyRules.parse(JSON.stringify(policy));
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyParseError);
    return err as PolicyParseError;
  }
  throw new Error('expected a PolicyParseError');
}

describe('PolicyRules', () => {
  describe('Glance default policy', () => {
    const policy = PolicyRules.parse(DEFAULT_GLANCE_POLICY);

    it('allows every image action to anyone', () => {
      const anonymous = creds({ roles: [], tenant: null, user: null });
      for (const action of [
        'add_image',
        'delete_image',
        'get_image',
        'get_images',
        'modify_image',
        'publicize_image',
        'copy_from',
        'download_image',
        'upload_image',
        'add_member',
        'delete_member',
        'get_members',
        'some_future_action',
      ]) {
        expect(policy.enforce(action, anonymous, {})).toBe(true);
      }
    });

    it('only admins are context_is_admin and manage the cache', () => {
      expect(policy.enforce('context_is_admin', creds(), {})).toBe(false);
      expect(
        policy.enforce('context_is_admin', creds({ roles: ['admin'] }), {}),
      ).toBe(true);
      expect(policy.enforce('manage_image_cache', creds(), {})).toBe(false);
    });

    it('matches the policy.json shipped with Glance Icehouse', () => {
      const fixture = readFileSync(
        join(import.meta.dirname, '../../test/fixtures/policy.json'),
        'utf8',
      );
      const testPolicy = PolicyRules.parse(fixture);
      expect(testPolicy.enforce('glance_creator', creds(), {})).toBe(false);
      expect(
        testPolicy.enforce(
          'glance_creator',
          creds({ roles: ['spl_role'] }),
          {},
        ),
      ).toBe(true);
      expect(testPolicy.enforce('manage_image_cache', creds(), {})).toBe(true);
    });
  });

  describe('simple checks', () => {
    it('"@", "" and [] always allow; "!" never does', () => {
      expect(allows('@')).toBe(true);
      expect(allows('')).toBe(true);
      expect(allows([])).toBe(true);
      expect(allows('!')).toBe(false);
    });

    it('role: matches case-insensitively against any role', () => {
      expect(allows('role:admin', creds({ roles: ['member', 'Admin'] }))).toBe(
        true,
      );
      expect(allows('role:ADMIN', creds({ roles: ['admin'] }))).toBe(true);
      expect(allows('role:admin', creds({ roles: ['member'] }))).toBe(false);
      expect(allows('role:admin', creds({ roles: [] }))).toBe(false);
    });

    it('is_admin:True / is_admin:False follow the credentials', () => {
      expect(allows('is_admin:True', creds({ isAdmin: true }))).toBe(true);
      expect(allows('is_admin:True', creds({ isAdmin: false }))).toBe(false);
      expect(allows('is_admin:False', creds({ isAdmin: false }))).toBe(true);
      expect(allows('is_admin:False', creds({ isAdmin: true }))).toBe(false);
    });

    it('compares credential fields with target values', () => {
      const rule = 'tenant:%(owner)s';
      expect(allows(rule, creds(), { owner: 'tenant-a' })).toBe(true);
      expect(allows(rule, creds(), { owner: 'tenant-b' })).toBe(false);
      expect(allows('user:%(user)s', creds(), { user: 'user-a' })).toBe(true);
      expect(
        allows('project_id:%(project_id)s', creds(), {
          project_id: 'tenant-a',
        }),
      ).toBe(true);
      expect(allows('tenant_id:%(t)s', creds(), { t: 'tenant-a' })).toBe(true);
      expect(allows('user_id:%(u)s', creds(), { u: 'user-a' })).toBe(true);
      expect(
        allows('is_admin:%(flag)s', creds({ isAdmin: true }), { flag: true }),
      ).toBe(true);
      expect(allows('roles:%(r)s', creds(), { r: 'member' })).toBe(true);
    });

    it('substitutes several keys and keeps the surrounding text', () => {
      expect(
        allows('user:%(a)s-%(b)s', creds({ user: 'x-y' }), { a: 'x', b: 'y' }),
      ).toBe(true);
    });

    it('compares credential fields with literals, quoted or not', () => {
      expect(allows('tenant:tenant-a')).toBe(true);
      expect(allows("tenant:'tenant-a'")).toBe(true);
      expect(allows('tenant:"tenant-a"')).toBe(true);
      expect(allows("tenant:'tenant-b'")).toBe(false);
    });

    it('a null tenant or user never matches', () => {
      const anonymous = creds({ tenant: null, user: null });
      expect(allows('tenant:%(owner)s', anonymous, { owner: null })).toBe(
        false,
      );
      expect(allows('user:None', anonymous)).toBe(false);
    });

    it('unknown credential fields never match', () => {
      expect(allows('domain:%(d)s', creds(), { d: 'x' })).toBe(false);
      expect(allows('not domain:x')).toBe(true);
    });

    it('a target key that is missing denies the whole request', () => {
      expect(allows('tenant:%(owner)s', creds(), {})).toBe(false);
      // Not just the one check: oslo aborted the evaluation.
      expect(allows('not tenant:%(owner)s', creds(), {})).toBe(false);
    });

    it('http: checks parse but always deny', () => {
      expect(allows('http://policy.example.com/check')).toBe(false);
      expect(allows('http://policy.example.com/check or role:member')).toBe(
        true,
      );
    });
  });

  describe('operators', () => {
    const admin = creds({ roles: ['admin'] });

    it('and / or / not', () => {
      expect(allows('role:member and tenant:tenant-a')).toBe(true);
      expect(allows('role:member and tenant:other')).toBe(false);
      expect(allows('role:admin or tenant:tenant-a')).toBe(true);
      expect(allows('role:admin or tenant:other')).toBe(false);
      expect(allows('not role:admin')).toBe(true);
      expect(allows('not role:admin', admin)).toBe(false);
      expect(allows('not not role:member')).toBe(true);
    });

    it('operators are case-insensitive', () => {
      expect(allows('role:admin OR role:member')).toBe(true);
      expect(allows('NOT role:member')).toBe(false);
      expect(allows('role:member And role:admin')).toBe(false);
    });

    it('not binds tighter than and, and tighter than or', () => {
      // (not admin) and member
      expect(allows('not role:admin and role:member')).toBe(true);
      expect(allows('not role:admin and role:member', admin)).toBe(false);
      // admin or (member and other)
      expect(allows('role:admin or role:member and role:other', admin)).toBe(
        true,
      );
      expect(allows('role:admin or role:member and role:other')).toBe(false);
      // (member and other) or admin
      expect(allows('role:member and role:other or role:admin', admin)).toBe(
        true,
      );
      expect(allows('role:member and role:other or role:member')).toBe(true);
      // (not member) or admin
      expect(allows('not role:member or role:admin')).toBe(false);
    });

    it('parentheses override precedence and nest', () => {
      expect(allows('(role:admin or role:member) and role:other')).toBe(false);
      expect(allows('role:admin or (role:member and tenant:tenant-a)')).toBe(
        true,
      );
      expect(allows('not (role:admin or role:member)')).toBe(false);
      expect(allows('((role:member))')).toBe(true);
      expect(
        allows('( ( role:admin or ( role:member and not ( tenant:x ) ) ) )'),
      ).toBe(true);
    });

    it('parentheses of %(key)s survive inside checks', () => {
      expect(
        allows('(role:admin or tenant:%(owner)s)', creds(), {
          owner: 'tenant-a',
        }),
      ).toBe(true);
    });
  });

  describe('legacy list-of-lists form', () => {
    const rule = [['role:admin'], ['tenant:%(tenant)s', 'role:member']];

    it('is an OR of ANDs', () => {
      expect(allows(rule, creds({ roles: ['admin'] }), { tenant: 'x' })).toBe(
        true,
      );
      expect(allows(rule, creds(), { tenant: 'tenant-a' })).toBe(true);
      expect(allows(rule, creds(), { tenant: 'tenant-b' })).toBe(false);
      expect(
        allows(rule, creds({ roles: ['reader'] }), { tenant: 'tenant-a' }),
      ).toBe(false);
    });

    it('accepts bare strings as one-check alternatives', () => {
      expect(allows(['role:admin', 'role:member'])).toBe(true);
      expect(allows(['role:admin', 'role:other'])).toBe(false);
    });

    it('skips empty inner lists; only empty inner lists means never', () => {
      expect(allows([[], ['role:member']])).toBe(true);
      expect(allows([[]])).toBe(false);
    });
  });

  describe('rule references and the default rule', () => {
    it('rule: evaluates another rule', () => {
      const policy = PolicyRules.parse(
        JSON.stringify({
          admin_or_owner: 'rule:admin or rule:owner',
          admin: 'role:admin',
          owner: 'tenant:%(owner)s',
        }),
      );
      expect(
        policy.enforce('admin_or_owner', creds(), { owner: 'tenant-a' }),
      ).toBe(true);
      expect(policy.enforce('admin_or_owner', creds(), { owner: 'x' })).toBe(
        false,
      );
      expect(
        policy.enforce('admin_or_owner', creds({ roles: ['admin'] }), {
          owner: 'x',
        }),
      ).toBe(true);
    });

    it('unknown actions and rule: names use the default rule', () => {
      const deny = PolicyRules.parse('{"default": "!", "r": "rule:missing"}');
      expect(deny.enforce('unknown_action', creds(), {})).toBe(false);
      expect(deny.enforce('r', creds(), {})).toBe(false);

      const allow = PolicyRules.parse(
        '{"default": "role:member", "r": "rule:missing"}',
      );
      expect(allow.enforce('unknown_action', creds(), {})).toBe(true);
      expect(allow.enforce('r', creds(), {})).toBe(true);
      expect(allow.enforce('r', creds({ roles: [] }), {})).toBe(false);
    });

    it('without a default rule unknown names deny', () => {
      const policy = PolicyRules.parse(
        '{"r": "rule:missing or not rule:missing"}',
      );
      expect(policy.enforce('unknown_action', creds(), {})).toBe(false);
      expect(policy.has('r')).toBe(true);
      expect(policy.has('missing')).toBe(false);
      // The missing rule is false, so its negation is true.
      expect(policy.enforce('r', creds(), {})).toBe(true);
    });

    it('the default rule name can be changed', () => {
      const policy = PolicyRules.parse('{"default": "!", "fallback": "@"}', {
        defaultRule: 'fallback',
      });
      expect(policy.enforce('unknown_action', creds(), {})).toBe(true);
    });

    it('reference cycles deny instead of recursing forever', () => {
      const policy = PolicyRules.parse(
        JSON.stringify({
          a: 'rule:b',
          b: 'rule:a',
          self: 'role:member and rule:self',
          negated: 'not rule:negated',
          default: 'rule:nowhere',
          via_default: 'rule:nowhere',
        }),
      );
      for (const action of ['a', 'b', 'self', 'negated', 'via_default', 'x']) {
        expect(policy.enforce(action, creds(), {})).toBe(false);
      }
    });

    it('a rule referenced twice without a cycle is fine', () => {
      const policy = PolicyRules.parse(
        JSON.stringify({
          member: 'role:member',
          both: 'rule:member and (rule:member or role:admin)',
        }),
      );
      expect(policy.enforce('both', creds(), {})).toBe(true);
    });
  });

  describe('malformed policies', () => {
    it.each([
      ['unbalanced "("', '(role:admin or role:member', /missing "\)"/],
      ['unbalanced ")"', 'role:admin)', /unexpected "\)"/],
      ['empty parentheses', '()', /unexpected "\)"/],
      ['dangling operator', 'role:admin or', /unexpected end/],
      ['leading operator', 'and role:admin', /unexpected "and"/],
      [
        'two checks in a row',
        'role:admin role:member',
        /unexpected "role:member"/,
      ],
      ['not without operand', 'role:admin and not', /unexpected end/],
      ['check without a kind', 'admin', /unknown check "admin"/],
      ['empty kind', ':admin', /unknown check/],
      ['quoted string alone', "'role:admin'", /unexpected quoted string/],
      ['whitespace only', '   ', /empty expression/],
    ])('rejects %s', (_label, rule, reason) => {
      const err = parseError({ ok: '', broken: rule });
      expect(err.ruleName).toBe('broken');
      expect(err.message).toContain('"broken"');
      expect(err.message).toMatch(reason);
    });

    it.each([
      ['a number', 42],
      ['a boolean', true],
      ['null', null],
      ['an object', { role: 'admin' }],
      ['a list holding a number', [['role:admin', 3]]],
      ['a list holding an object', [{}]],
      ['a list check without a kind', [['admin']]],
    ])('rejects a rule that is %s', (_label, rule) => {
      const err = parseError({ broken: rule });
      expect(err.ruleName).toBe('broken');
      expect(err.message).toContain('"broken"');
    });

    it('rejects invalid JSON and non-object documents', () => {
      for (const text of ['{"a": ', '[]', '"role:admin"', 'null']) {
        expect(() => PolicyRules.parse(text)).toThrow(PolicyParseError);
      }
      expect(() => PolicyRules.parse('{')).toThrow(/not valid JSON/);
    });
  });
});
