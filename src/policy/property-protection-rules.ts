import {
  DEFAULT_GLANCE_POLICY,
  PolicyRules,
  type PolicyCredentials,
} from './policy-rules.js';

/**
 * Glance property protections (`property_protection_file`).
 *
 * Behaviour follows Icehouse `glance/common/property_utils.py`:
 * - sections are Python regexes tried in file order with `re.search`
 *   (unanchored: use `^` / `$`), the first hit decides;
 * - no section matching a property denies it, but a file without sections
 *   allows everything;
 * - each section needs all four operations; an empty value means nobody.
 * Stricter than Icehouse, on purpose: unknown option names, `@`/`!` mixed with
 * roles, and policy names missing from the policy file are load errors; roles
 * compare case-insensitively.
 *
 * The INI reader follows Python 2's ConfigParser: `[` ... first `]` is a
 * section (so a section regex cannot contain `]`), `#`/`;` comment lines,
 * `key = value` or `key: value`, indented continuation lines, a `[DEFAULT]`
 * section whose options apply to every section. `%` interpolation is not
 * supported.
 */

export type PropertyOperation = 'create' | 'read' | 'update' | 'delete';
export type PropertyProtectionFormat = 'roles' | 'policies';

const OPERATIONS: readonly PropertyOperation[] = [
  'create',
  'read',
  'update',
  'delete',
];

export class PropertyProtectionParseError extends Error {
  constructor(
    readonly section: string | null,
    reason: string,
  ) {
    super(
      section === null
        ? `Invalid property protection file: ${reason}`
        : `Invalid property protection rule [${section}]: ${reason}`,
    );
    this.name = 'PropertyProtectionParseError';
  }
}

type Permission =
  | { type: 'everyone' }
  | { type: 'nobody' }
  | { type: 'roles'; roles: ReadonlySet<string> }
  | { type: 'policy'; rule: string };

interface ProtectedSection {
  pattern: RegExp;
  permissions: Record<PropertyOperation, Permission>;
}

export class PropertyProtectionRules {
  private constructor(
    private readonly sections: readonly ProtectedSection[],
    private readonly policy: PolicyRules,
  ) {}

  /** `policy` is only used by the 'policies' format; defaults to Glance's. */
  static parse(
    iniText: string,
    format: PropertyProtectionFormat,
    policy: PolicyRules = PolicyRules.parse(DEFAULT_GLANCE_POLICY),
  ): PropertyProtectionRules {
    if (format !== 'roles' && format !== 'policies') {
      throw new PropertyProtectionParseError(
        null,
        `unknown rule format "${String(format)}" (expected "roles" or "policies")`,
      );
    }
    const { sections, defaults } = readIni(iniText);
    const parsed: ProtectedSection[] = [];
    for (const [name, options] of sections) {
      const fail = (reason: string) =>
        new PropertyProtectionParseError(name, reason);
      const merged = new Map([...defaults, ...options]);
      for (const option of merged.keys()) {
        if (!(OPERATIONS as readonly string[]).includes(option)) {
          throw fail(
            `unknown operation "${option}" (expected create, read, update, delete)`,
          );
        }
      }
      const permissions = {} as Record<PropertyOperation, Permission>;
      for (const operation of OPERATIONS) {
        const value = merged.get(operation);
        if (value === undefined) throw fail(`missing operation "${operation}"`);
        permissions[operation] =
          format === 'roles'
            ? parseRoles(value, operation, fail)
            : parsePolicyName(value, operation, policy, fail);
      }
      let pattern: RegExp;
      try {
        pattern = pythonRegExp(name);
      } catch (err) {
        throw fail(`invalid regular expression (${(err as Error).message})`);
      }
      parsed.push({ pattern, permissions });
    }
    return new PropertyProtectionRules(parsed, policy);
  }

  /** `policy`: the rule set now in force, when POLICY_FILE was reloaded since parsing. */
  check(
    propertyName: string,
    operation: PropertyOperation,
    creds: PolicyCredentials,
    policy: PolicyRules = this.policy,
  ): boolean {
    if (this.sections.length === 0) return true;
    if (!OPERATIONS.includes(operation)) return false;
    const section = this.sections.find((s) => s.pattern.test(propertyName));
    if (section === undefined) return false;
    const permission = section.permissions[operation];
    switch (permission.type) {
      case 'everyone':
        return true;
      case 'nobody':
        return false;
      case 'roles':
        return creds.roles.some((role) =>
          permission.roles.has(role.toLowerCase()),
        );
      case 'policy':
        // Glance enforces these with an empty target.
        return policy.enforce(permission.rule, creds, {});
    }
  }
}

type Fail = (reason: string) => PropertyProtectionParseError;

function parseRoles(
  value: string,
  operation: PropertyOperation,
  fail: Fail,
): Permission {
  const roles = value
    .split(',')
    .map((role) => role.trim())
    .filter((role) => role !== '');
  const everyone = roles.includes('@');
  const nobody = roles.includes('!');
  if (everyone && nobody) {
    throw fail(`${operation}: '@' and '!' are mutually exclusive`);
  }
  if ((everyone || nobody) && roles.some((r) => r !== '@' && r !== '!')) {
    throw fail(`${operation}: '@' and '!' cannot be combined with roles`);
  }
  if (everyone) return { type: 'everyone' };
  if (nobody || roles.length === 0) return { type: 'nobody' };
  return { type: 'roles', roles: new Set(roles.map((r) => r.toLowerCase())) };
}

function parsePolicyName(
  value: string,
  operation: PropertyOperation,
  policy: PolicyRules,
  fail: Fail,
): Permission {
  if (value === '') return { type: 'nobody' };
  if (value.includes(',')) {
    throw fail(
      `${operation}: only one policy is allowed per operation (combine them in the policy file)`,
    );
  }
  if (value === '@') return { type: 'everyone' };
  if (value === '!') return { type: 'nobody' };
  if (!policy.has(value)) {
    throw fail(`${operation}: unknown policy "${value}"`);
  }
  return { type: 'policy', rule: value };
}

/** Python 2 ConfigParser's reading rules, keeping section order. */
function readIni(text: string): {
  sections: Map<string, Map<string, string>>;
  defaults: Map<string, string>;
} {
  const sections = new Map<string, Map<string, string>>();
  const defaults = new Map<string, string>();
  let current: Map<string, string> | undefined;
  let option: string | undefined;
  const lines = text.split(/\r?\n/);
  for (const [index, line] of lines.entries()) {
    if (line.trim() === '' || line[0] === '#' || line[0] === ';') continue;
    if (/^\s/.test(line) && current !== undefined && option !== undefined) {
      current.set(option, `${current.get(option)}\n${line.trim()}`);
      continue;
    }
    const header = /^\[([^\]]+)\]/.exec(line);
    if (header) {
      const name = header[1];
      if (name === 'DEFAULT') {
        current = defaults;
      } else {
        // A repeated section merges into the first, as in ConfigParser.
        current = sections.get(name) ?? new Map<string, string>();
        sections.set(name, current);
      }
      option = undefined;
      continue;
    }
    const assignment = /^([^:=\s][^:=]*?)\s*[:=]\s*(.*)$/.exec(line);
    if (current === undefined || assignment === null) {
      throw new PropertyProtectionParseError(
        null,
        current === undefined
          ? `line ${index + 1}: option before any [section]`
          : `line ${index + 1}: cannot parse ${JSON.stringify(line)}`,
      );
    }
    option = assignment[1].toLowerCase();
    let value = assignment[2];
    // An inline comment starts at a ';' preceded by whitespace.
    const comment = value.search(/\s;/);
    if (comment !== -1) value = value.slice(0, comment);
    value = value.trim();
    current.set(option, value === '""' ? '' : value);
  }
  return { sections, defaults };
}

/**
 * Compiles a Python `re` pattern as a JS RegExp. Translated: a leading
 * `(?i)`/`(?m)`/`(?s)` flag group, `(?P<name>...)`, `(?P=name)`, `\A`, `\Z`.
 * Anything else is handed to RegExp as is: other inline flags, conditionals
 * and flag groups after the start are rejected, and Python's `$` also matching
 * before a final newline is not reproduced.
 */
function pythonRegExp(source: string): RegExp {
  let body = source;
  let flags = '';
  const inline = /^\(\?([a-zA-Z]+)\)/.exec(body);
  if (inline) {
    for (const flag of new Set(inline[1])) {
      if (flag !== 'i' && flag !== 'm' && flag !== 's') {
        throw new Error(`unsupported inline flag "${flag}"`);
      }
      flags += flag;
    }
    body = body.slice(inline[0].length);
  }
  const translated = body.replace(
    /\\([\s\S])|\(\?P<|\(\?P=([^)]*)\)/g,
    (token: string, escaped?: string, name?: string) => {
      if (escaped === 'A') return '(?<![\\s\\S])';
      if (escaped === 'Z') return '(?![\\s\\S])';
      if (escaped !== undefined) return token;
      return token === '(?P<' ? '(?<' : `\\k<${name}>`;
    },
  );
  return new RegExp(translated, flags);
}
