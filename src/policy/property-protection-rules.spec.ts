import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PolicyRules, type PolicyCredentials } from './policy-rules.js';
import {
  PropertyProtectionParseError,
  PropertyProtectionRules,
  type PropertyOperation,
} from './property-protection-rules.js';

const fixture = (name: string) =>
  readFileSync(join(import.meta.dirname, '../../test/fixtures', name), 'utf8');

const OPERATIONS: PropertyOperation[] = ['create', 'read', 'update', 'delete'];

function as(...roles: string[]): PolicyCredentials {
  return { roles, tenant: 'tenant-a', user: 'user-a', isAdmin: false };
}

function section(name: string, values: Partial<Record<string, string>>) {
  const lines = Object.entries(values).map(([op, v]) => `${op} = ${v}`);
  return `[${name}]\n${lines.join('\n')}\n`;
}

const everyOp = (value: string) => ({
  create: value,
  read: value,
  update: value,
  delete: value,
});

function parseError(
  text: string,
  format: 'roles' | 'policies' = 'roles',
  policy?: PolicyRules,
): PropertyProtectionParseError {
  try {
    PropertyProtectionRules.parse(text, format, policy);
  } catch (err) {
    expect(err).toBeInstanceOf(PropertyProtectionParseError);
    return err as PropertyProtectionParseError;
  }
  throw new Error('expected a PropertyProtectionParseError');
}

describe('PropertyProtectionRules', () => {
  describe('roles format (Glance test fixture)', () => {
    const rules = PropertyProtectionRules.parse(
      fixture('property-protections-roles.conf'),
      'roles',
    );

    it('grants each operation to the listed roles only', () => {
      for (const op of OPERATIONS) {
        expect(rules.check('x_owner_foo', op, as('member'))).toBe(true);
        expect(rules.check('x_owner_foo', op, as('admin'))).toBe(true);
        expect(rules.check('x_owner_foo', op, as('reader'))).toBe(false);
        expect(rules.check('test_prop', op, as('admin'))).toBe(true);
        expect(rules.check('test_prop', op, as('member'))).toBe(false);
      }
    });

    it('applies per-operation role lists', () => {
      const spl = as('spl_role');
      expect(rules.check('spl_read_only_prop', 'read', spl)).toBe(true);
      expect(rules.check('spl_read_only_prop', 'create', spl)).toBe(false);
      expect(rules.check('spl_read_only_prop', 'update', spl)).toBe(false);
      expect(rules.check('spl_update_only_prop', 'update', spl)).toBe(true);
      expect(rules.check('spl_update_only_prop', 'read', spl)).toBe(false);
      expect(rules.check('spl_delete_prop', 'delete', spl)).toBe(true);
      expect(rules.check('spl_delete_prop', 'update', spl)).toBe(false);
    });

    it('"@" allows everyone and "!" nobody', () => {
      for (const op of OPERATIONS) {
        expect(rules.check('x_all_permitted', op, as())).toBe(true);
        expect(rules.check('x_all_permitted_too', op, as(''))).toBe(true);
        expect(rules.check('x_none_permitted', op, as('admin'))).toBe(false);
      }
      expect(rules.check('x_none_read', 'create', as('member'))).toBe(true);
      expect(rules.check('x_none_read', 'read', as('admin'))).toBe(false);
    });

    it('the first matching section wins, in file order', () => {
      // x_foo_matcher is listed before the broader x_foo_* (everyone).
      expect(rules.check('x_foo_matcher', 'read', as('member'))).toBe(false);
      expect(rules.check('x_foo_matcher', 'read', as('admin'))).toBe(true);
      expect(rules.check('x_foo_bar', 'read', as('member'))).toBe(true);
    });

    it('sections match anywhere in the name unless anchored (re.search)', () => {
      // "spl_create_prop" is unanchored, "^x_owner_.*" is not.
      expect(
        rules.check('my_spl_create_prop_2', 'create', as('spl_role')),
      ).toBe(true);
      expect(rules.check('my_x_owner_foo', 'read', as('member'))).toBe(false);
    });

    it('compares roles case-insensitively', () => {
      expect(rules.check('x_owner_foo', 'read', as('MEMBER'))).toBe(true);
      const upper = PropertyProtectionRules.parse(
        section('.*', everyOp('Admin, Member')),
        'roles',
      );
      expect(upper.check('anything', 'read', as('member'))).toBe(true);
      expect(upper.check('anything', 'read', as('other'))).toBe(false);
    });

    it('rejects unknown operations at check time', () => {
      expect(
        rules.check('x_all_permitted', 'list' as PropertyOperation, as()),
      ).toBe(false);
    });
  });

  describe('matching', () => {
    it('denies properties no section matches', () => {
      const rules = PropertyProtectionRules.parse(
        section('^x_', everyOp('@')),
        'roles',
      );
      expect(rules.check('x_a', 'read', as())).toBe(true);
      expect(rules.check('y_a', 'read', as('admin'))).toBe(false);
    });

    it('allows everything when the file has no sections', () => {
      const rules = PropertyProtectionRules.parse('# nothing here\n', 'roles');
      expect(rules.check('anything', 'delete', as())).toBe(true);
    });

    it('translates Python-only regex syntax', () => {
      const text = [
        section('(?i)^CASE_', everyOp('@')),
        section('^(?P<p>ab)(?P=p)$', everyOp('@')),
        section('\\Aexact\\Z', everyOp('@')),
        section('.*', everyOp('!')),
      ].join('\n');
      const rules = PropertyProtectionRules.parse(text, 'roles');
      expect(rules.check('case_x', 'read', as())).toBe(true);
      expect(rules.check('abab', 'read', as())).toBe(true);
      expect(rules.check('abac', 'read', as())).toBe(false);
      expect(rules.check('exact', 'read', as())).toBe(true);
      expect(rules.check('exactly', 'read', as())).toBe(false);
    });

    it('reads ConfigParser syntax: comments, ":" separators, continuations, DEFAULT', () => {
      const text = [
        '; a comment',
        '[DEFAULT]',
        'delete = !',
        '',
        '[^a]',
        'create: admin,',
        '    member',
        'read = member ; inline comment',
        'update = admin',
        '',
        '[^b]',
        'create = @',
        'read = @',
        'update = @',
        'delete = @',
      ].join('\n');
      const rules = PropertyProtectionRules.parse(text, 'roles');
      expect(rules.check('a1', 'create', as('member'))).toBe(true);
      expect(rules.check('a1', 'read', as('member'))).toBe(true);
      expect(rules.check('a1', 'update', as('member'))).toBe(false);
      expect(rules.check('a1', 'delete', as('admin'))).toBe(false);
      expect(rules.check('b1', 'delete', as())).toBe(true);
    });

    it('an empty value allows nobody (Icehouse logs a warning)', () => {
      const rules = PropertyProtectionRules.parse(
        section('.*', { ...everyOp('admin'), read: '' }),
        'roles',
      );
      expect(rules.check('p', 'read', as('admin'))).toBe(false);
      expect(rules.check('p', 'create', as('admin'))).toBe(true);
    });
  });

  describe('policies format (Glance test fixture)', () => {
    const policy = PolicyRules.parse(fixture('policy.json'));
    const rules = PropertyProtectionRules.parse(
      fixture('property-protections-policies.conf'),
      'policies',
      policy,
    );

    it('evaluates the named policy per operation', () => {
      expect(rules.check('spl_creator_policy', 'create', as('spl_role'))).toBe(
        true,
      );
      expect(rules.check('spl_creator_policy', 'read', as('spl_role'))).toBe(
        true,
      );
      expect(rules.check('spl_creator_policy', 'update', as('spl_role'))).toBe(
        false,
      );
      expect(rules.check('spl_creator_policy', 'update', as('admin'))).toBe(
        true,
      );
      expect(rules.check('spl_creator_policy', 'create', as('member'))).toBe(
        false,
      );
      expect(rules.check('spl_default_policy', 'read', as())).toBe(true);
      expect(rules.check('other_prop', 'read', as('member'))).toBe(false);
      expect(rules.check('other_prop', 'read', as('admin'))).toBe(true);
    });

    it('"@" and "!" work in policies format too', () => {
      for (const op of OPERATIONS) {
        expect(rules.check('x_all_permitted', op, as())).toBe(true);
        expect(rules.check('x_none_permitted', op, as('admin'))).toBe(false);
      }
      expect(rules.check('x_none_update', 'update', as('admin'))).toBe(false);
      expect(rules.check('x_none_update', 'read', as('admin'))).toBe(true);
    });

    it("uses Glance's default policy when none is given", () => {
      const rules = PropertyProtectionRules.parse(
        section('.*', { ...everyOp('default'), delete: 'context_is_admin' }),
        'policies',
      );
      expect(rules.check('p', 'read', as())).toBe(true);
      expect(rules.check('p', 'delete', as('member'))).toBe(false);
      expect(rules.check('p', 'delete', as('admin'))).toBe(true);
    });
  });

  describe('invalid files', () => {
    it("rejects '@' together with '!', naming the section", () => {
      const err = parseError(
        section('^x_.*', { ...everyOp('admin'), update: '@,!' }),
      );
      expect(err.section).toBe('^x_.*');
      expect(err.message).toContain('[^x_.*]');
      expect(err.message).toMatch(/update.*mutually exclusive/);
    });

    it("rejects '@' or '!' mixed with roles", () => {
      for (const value of ['@, admin', 'admin,!']) {
        const err = parseError(
          section('p', { ...everyOp('admin'), read: value }),
        );
        expect(err.section).toBe('p');
        expect(err.message).toMatch(/read.*cannot be combined/);
      }
    });

    it('rejects an invalid regular expression, naming it', () => {
      for (const bad of ['^[0-9)', '*abc', 'a(b', '(?x)a']) {
        const err = parseError(section(bad, everyOp('admin')));
        expect(err.section).toBe(bad);
        expect(err.message).toContain(`[${bad}]`);
        expect(err.message).toMatch(/invalid regular expression/);
      }
    });

    it('rejects a missing or misspelt operation', () => {
      const missing = parseError(
        section('p', { create: 'a', update: 'a', delete: 'a' }),
      );
      expect(missing.section).toBe('p');
      expect(missing.message).toMatch(/missing operation "read"/);

      const misspelt = parseError(
        section('p', { create: 'a', rade: 'a', update: 'a', delete: 'a' }),
      );
      expect(misspelt.message).toMatch(/unknown operation "rade"/);

      const extra = parseError(section('p', { ...everyOp('a'), list: 'a' }));
      expect(extra.message).toMatch(/unknown operation "list"/);
    });

    it('rejects unknown policy names and policy lists', () => {
      const policy = PolicyRules.parse(fixture('policy.json'));
      const unknown = parseError(
        section('^x', { ...everyOp('default'), create: 'no_such_policy' }),
        'policies',
        policy,
      );
      expect(unknown.section).toBe('^x');
      expect(unknown.message).toMatch(
        /create: unknown policy "no_such_policy"/,
      );

      const list = parseError(
        section('^x', {
          ...everyOp('default'),
          read: 'default,glance_creator',
        }),
        'policies',
        policy,
      );
      expect(list.message).toMatch(/read: only one policy/);
    });

    it('rejects lines that are not INI', () => {
      expect(parseError('create = admin\n').message).toMatch(
        /before any \[section\]/,
      );
      expect(parseError('[p\ncreate = admin\n').message).toMatch(/line 1/);
      expect(
        parseError(`${section('p', everyOp('a'))}just words\n`).message,
      ).toMatch(/line 6: cannot parse "just words"/);
    });

    it('rejects an unknown rule format', () => {
      expect(() => PropertyProtectionRules.parse('', 'acl' as 'roles')).toThrow(
        /unknown rule format "acl"/,
      );
    });
  });
});
