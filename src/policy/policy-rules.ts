/**
 * The oslo policy language as Glance Icehouse used it (policy.json).
 *
 * Differences from the 2014 oslo-incubator engine, on purpose:
 * - Malformed rules throw PolicyParseError at load time; oslo logged them and
 *   silently turned them into "never".
 * - `and` / `or` mix without parentheses with the usual precedence
 *   (not > and > or); the Icehouse parser failed closed on `a or b and c`.
 * - `http:` checks would POST to a remote server; they are accepted but
 *   always deny.
 * - Generic checks know the Glance credentials (`tenant`, `user`, `roles`)
 *   plus `is_admin`, `tenant_id`/`project_id` and `user_id`; a quoted match
 *   (`tenant:'abc'`) is compared without its quotes.
 * - A rule cycle denies instead of overflowing the stack.
 */

/** The caller as the policy engine sees it (Glance's credentials dict). */
export interface PolicyCredentials {
  roles: readonly string[];
  tenant: string | null;
  user: string | null;
  isAdmin: boolean;
}

export type PolicyTarget = Record<string, unknown>;

export interface PolicyRulesOptions {
  /** Rule used for unknown names (Glance's `policy_default_rule`). */
  defaultRule?: string;
}

/** Glance Icehouse `etc/policy.json`: everything allowed. */
export const DEFAULT_GLANCE_POLICY = `{
    "context_is_admin":  "role:admin",
    "default": "",

    "add_image": "",
    "delete_image": "",
    "get_image": "",
    "get_images": "",
    "modify_image": "",
    "publicize_image": "",
    "copy_from": "",

    "download_image": "",
    "upload_image": "",

    "delete_image_location": "",
    "get_image_location": "",
    "set_image_location": "",

    "add_member": "",
    "delete_member": "",
    "get_member": "",
    "get_members": "",
    "modify_member": "",

    "manage_image_cache": "role:admin",

    "get_task": "",
    "get_tasks": "",
    "add_task": "",
    "modify_task": ""
}
`;

export class PolicyParseError extends Error {
  constructor(
    readonly ruleName: string | null,
    reason: string,
  ) {
    super(
      ruleName === null
        ? `Invalid policy file: ${reason}`
        : `Invalid policy rule "${ruleName}": ${reason}`,
    );
    this.name = 'PolicyParseError';
  }
}

type Check =
  | { type: 'const'; value: boolean }
  | { type: 'not'; check: Check }
  | { type: 'and' | 'or'; checks: Check[] }
  | { type: 'role'; role: string }
  | { type: 'rule'; name: string }
  | { type: 'generic'; field: string; match: string };

const ALWAYS: Check = { type: 'const', value: true };
const NEVER: Check = { type: 'const', value: false };

/** Aborts a whole enforcement (fail closed), like oslo's KeyError handling. */
class DenyAll extends Error {}

export class PolicyRules {
  private constructor(
    private readonly rules: ReadonlyMap<string, Check>,
    private readonly defaultRule: string,
  ) {}

  static parse(json: string, options: PolicyRulesOptions = {}): PolicyRules {
    let data: unknown;
    try {
      data = JSON.parse(json);
    } catch (err) {
      throw new PolicyParseError(null, `not valid JSON (${String(err)})`);
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      throw new PolicyParseError(null, 'expected a JSON object of rules');
    }
    const rules = new Map<string, Check>();
    for (const [name, value] of Object.entries(data)) {
      rules.set(name, parseRule(name, value));
    }
    return new PolicyRules(rules, options.defaultRule ?? 'default');
  }

  has(name: string): boolean {
    return this.rules.has(name);
  }

  /** True when `action` is allowed; unknown actions use the default rule. */
  enforce(
    action: string,
    creds: PolicyCredentials,
    target: PolicyTarget,
  ): boolean {
    // Most actions are a constant ("" = always): no evaluation state needed.
    const direct = this.rules.has(action)
      ? this.rules.get(action)
      : this.rules.get(this.defaultRule);
    if (direct?.type === 'const') return direct.value;
    try {
      return this.evaluateRule(action, creds, target, new Set());
    } catch (err) {
      if (err instanceof DenyAll) return false;
      throw err;
    }
  }

  private evaluateRule(
    name: string,
    creds: PolicyCredentials,
    target: PolicyTarget,
    active: Set<string>,
  ): boolean {
    // oslo's Rules.__missing__ serves the default rule for any unknown name,
    // including names referenced by `rule:`.
    const resolved = this.rules.has(name)
      ? name
      : this.rules.has(this.defaultRule)
        ? this.defaultRule
        : undefined;
    if (resolved === undefined) return false;
    if (active.has(resolved)) throw new DenyAll();
    active.add(resolved);
    try {
      return this.evaluate(this.rules.get(resolved)!, creds, target, active);
    } finally {
      active.delete(resolved);
    }
  }

  private evaluate(
    check: Check,
    creds: PolicyCredentials,
    target: PolicyTarget,
    active: Set<string>,
  ): boolean {
    switch (check.type) {
      case 'const':
        return check.value;
      case 'not':
        return !this.evaluate(check.check, creds, target, active);
      case 'and':
        return check.checks.every((c) =>
          this.evaluate(c, creds, target, active),
        );
      case 'or':
        return check.checks.some((c) =>
          this.evaluate(c, creds, target, active),
        );
      case 'role':
        return creds.roles.some((role) => role.toLowerCase() === check.role);
      case 'rule':
        return this.evaluateRule(check.name, creds, target, active);
      case 'generic':
        return genericMatches(
          check.field,
          substitute(check.match, target),
          creds,
        );
    }
  }
}

function parseRule(name: string, value: unknown): Check {
  if (typeof value === 'string') return parseText(name, value);
  if (Array.isArray(value)) return parseList(name, value);
  throw new PolicyParseError(
    name,
    `expected a string or a list of lists, got ${JSON.stringify(value)}`,
  );
}

/** Legacy form: the outer list is OR, each inner list is AND. */
function parseList(name: string, list: unknown[]): Check {
  if (list.length === 0) return ALWAYS;
  const alternatives: Check[] = [];
  for (const inner of list) {
    if (inner === '' || (Array.isArray(inner) && inner.length === 0)) continue;
    const items = typeof inner === 'string' ? [inner] : inner;
    if (!Array.isArray(items)) {
      throw new PolicyParseError(
        name,
        `list rules hold strings or lists of strings, got ${JSON.stringify(inner)}`,
      );
    }
    const checks = items.map((item) => {
      if (typeof item !== 'string') {
        throw new PolicyParseError(
          name,
          `list rules hold strings, got ${JSON.stringify(item)}`,
        );
      }
      return parseCheck(name, item);
    });
    alternatives.push(
      checks.length === 1 ? checks[0] : { type: 'and', checks },
    );
  }
  // Only empty inner lists: oslo turns this into "never".
  if (alternatives.length === 0) return NEVER;
  return alternatives.length === 1
    ? alternatives[0]
    : { type: 'or', checks: alternatives };
}

type Token =
  | { type: '(' | ')' | 'and' | 'or' | 'not'; text: string }
  | { type: 'check'; text: string; check: Check };

/**
 * Words split on whitespace; parentheses only count at the edges of a word,
 * so `%(key)s` inside a check survives.
 */
function tokenize(name: string, text: string): Token[] {
  const tokens: Token[] = [];
  for (const word of text.split(/\s+/)) {
    let rest = word;
    while (rest.startsWith('(')) {
      tokens.push({ type: '(', text: '(' });
      rest = rest.slice(1);
    }
    let trailing = 0;
    while (rest.endsWith(')')) {
      trailing++;
      rest = rest.slice(0, -1);
    }
    if (rest !== '') {
      const lowered = rest.toLowerCase();
      if (lowered === 'and' || lowered === 'or' || lowered === 'not') {
        tokens.push({ type: lowered, text: rest });
      } else if (unquote(rest) !== rest) {
        throw new PolicyParseError(
          name,
          `unexpected quoted string ${rest} in ${JSON.stringify(text)}`,
        );
      } else {
        tokens.push({
          type: 'check',
          text: rest,
          check: parseCheck(name, rest),
        });
      }
    }
    for (let i = 0; i < trailing; i++) tokens.push({ type: ')', text: ')' });
  }
  return tokens;
}

/** Recursive descent: or := and ('or' and)*, and := not ('and' not)*. */
function parseText(name: string, text: string): Check {
  if (text === '') return ALWAYS;
  const tokens = tokenize(name, text);
  const fail = (reason: string) =>
    new PolicyParseError(name, `${reason} in ${JSON.stringify(text)}`);
  if (tokens.length === 0) throw fail('empty expression');
  let pos = 0;

  const parseOr = (): Check => {
    const checks = [parseAnd()];
    while (tokens[pos]?.type === 'or') {
      pos++;
      checks.push(parseAnd());
    }
    return checks.length === 1 ? checks[0] : { type: 'or', checks };
  };
  const parseAnd = (): Check => {
    const checks = [parseNot()];
    while (tokens[pos]?.type === 'and') {
      pos++;
      checks.push(parseNot());
    }
    return checks.length === 1 ? checks[0] : { type: 'and', checks };
  };
  const parseNot = (): Check => {
    if (tokens[pos]?.type !== 'not') return parseAtom();
    pos++;
    return { type: 'not', check: parseNot() };
  };
  const parseAtom = (): Check => {
    const token = tokens[pos++];
    if (token === undefined) throw fail('unexpected end of rule');
    if (token.type === 'check') return token.check;
    if (token.type !== '(') throw fail(`unexpected "${token.text}"`);
    const inner = parseOr();
    if (tokens[pos]?.type !== ')') {
      throw fail('unbalanced parentheses (missing ")")');
    }
    pos++;
    return inner;
  };

  const root = parseOr();
  if (pos < tokens.length) {
    throw fail(
      tokens[pos].type === ')'
        ? 'unbalanced parentheses (unexpected ")")'
        : `unexpected "${tokens[pos].text}"`,
    );
  }
  return root;
}

/** One `kind:match` check, or `@` / `!`. */
function parseCheck(name: string, text: string): Check {
  if (text === '@') return ALWAYS;
  if (text === '!') return NEVER;
  const colon = text.indexOf(':');
  if (colon <= 0) {
    throw new PolicyParseError(
      name,
      `unknown check ${JSON.stringify(text)} (expected "kind:match", "@" or "!")`,
    );
  }
  const kind = text.slice(0, colon);
  const match = text.slice(colon + 1);
  switch (kind) {
    case 'rule':
      return { type: 'rule', name: match };
    case 'role':
      return { type: 'role', role: match.toLowerCase() };
    case 'http':
      // Remote policy servers are not supported: fail closed.
      return NEVER;
    default:
      return { type: 'generic', field: kind, match: unquote(match) };
  }
}

function unquote(text: string): string {
  const quoted =
    text.length >= 2 &&
    (text[0] === "'" || text[0] === '"') &&
    text[text.length - 1] === text[0];
  return quoted ? text.slice(1, -1) : text;
}

/** Python's `match % target` for `%(key)s`; a missing key denies everything. */
function substitute(match: string, target: PolicyTarget): string {
  return match.replace(/%\(([^)]*)\)s/g, (_, key: string) => {
    if (!Object.hasOwn(target, key)) throw new DenyAll();
    return pythonStr(target[key]);
  });
}

function pythonStr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value);
}

function genericMatches(
  field: string,
  expected: string,
  creds: PolicyCredentials,
): boolean {
  switch (field) {
    case 'tenant':
    case 'tenant_id':
    case 'project_id':
      return creds.tenant !== null && creds.tenant === expected;
    case 'user':
    case 'user_id':
      return creds.user !== null && creds.user === expected;
    case 'is_admin':
      return pythonStr(creds.isAdmin) === expected;
    case 'roles':
      return creds.roles.includes(expected);
    default:
      // oslo: a field missing from the credentials never matches.
      return false;
  }
}
