import { randomBytes, randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeKeystoneOptions {
  serviceUser?: string;
  servicePassword?: string;
  serviceProject?: string;
  /** Lifetime of the service tokens it issues (default one hour). */
  serviceTokenTtlMs?: number;
}

export interface TokenSpec {
  userId?: string;
  userName?: string;
  /** null: an unscoped token. */
  projectId?: string | null;
  projectName?: string | null;
  roles?: string[];
  /** Lifetime from now (default one hour); negative for an expired token. */
  expiresInMs?: number;
}

interface TokenRecord {
  user: { id: string; name: string };
  project: { id: string; name: string } | null;
  roles: string[];
  expiresAt: number;
  service: boolean;
}

export interface FakeKeystone {
  /** Base URL without /v3, e.g. http://127.0.0.1:40123 */
  url: string;
  /** Counts of requests received, by kind. */
  requests: { total: number; authenticate: number; validate: number };
  issueToken(spec?: TokenSpec): string;
  revoke(token: string): void;
  /** Revokes every service token issued so far (their next use gets 401). */
  revokeServiceTokens(): void;
  /** While down, every request gets a 500. */
  setDown(down: boolean): void;
  /** Delays every response by this many ms (0: none). */
  setDelay(ms: number): void;
  /** Validation answers 200 even for expired subject tokens (as with allow_expired). */
  setAllowExpired(allow: boolean): void;
  close(): Promise<void>;
}

/**
 * A Keystone v3 speaking just enough of /v3/auth/tokens for token
 * validation: password authentication (POST) and validation (GET).
 */
export async function startFakeKeystone(
  opts: FakeKeystoneOptions = {},
): Promise<FakeKeystone> {
  const serviceUser = opts.serviceUser ?? 'glance';
  const servicePassword = opts.servicePassword ?? 'glance-secret';
  const serviceProject = opts.serviceProject ?? 'service';
  const serviceTokenTtlMs = opts.serviceTokenTtlMs ?? 3_600_000;
  const tokens = new Map<string, TokenRecord>();
  const requests = { total: 0, authenticate: 0, validate: 0 };
  const timers = new Set<NodeJS.Timeout>();
  let down = false;
  let delayMs = 0;
  let allowExpired = false;

  const newToken = (record: TokenRecord): string => {
    const token = `gAAAA${randomBytes(24).toString('base64url')}`;
    tokens.set(token, record);
    return token;
  };
  const live = (token: string | undefined): TokenRecord | null => {
    const record = token === undefined ? undefined : tokens.get(token);
    return record && record.expiresAt > Date.now() ? record : null;
  };
  const tokenBody = (record: TokenRecord) => ({
    token: {
      methods: ['password'],
      user: {
        id: record.user.id,
        name: record.user.name,
        domain: { id: 'default', name: 'Default' },
      },
      ...(record.project && {
        project: {
          ...record.project,
          domain: { id: 'default', name: 'Default' },
        },
      }),
      roles: record.roles.map((name) => ({ id: randomUUID(), name })),
      expires_at: new Date(record.expiresAt).toISOString(),
      issued_at: new Date().toISOString(),
    },
  });
  const send = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    const reply = () => {
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(text),
        ...headers,
      });
      res.end(text);
    };
    if (delayMs <= 0) return reply();
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!res.destroyed) reply();
    }, delayMs);
    timers.add(timer);
  };
  const error = (res: ServerResponse, code: number, title: string) =>
    send(res, code, { error: { code, title, message: title } });

  const authenticate = (
    req: IncomingMessage,
    res: ServerResponse,
    raw: string,
  ) => {
    let auth: any;
    try {
      auth = JSON.parse(raw).auth;
    } catch {
      return error(res, 400, 'Bad Request');
    }
    const user = auth?.identity?.password?.user;
    const project = auth?.scope?.project;
    const ok =
      auth?.identity?.methods?.includes('password') &&
      user?.name === serviceUser &&
      user?.password === servicePassword &&
      user?.domain?.name === 'Default' &&
      project?.name === serviceProject &&
      project?.domain?.name === 'Default';
    if (!ok) return error(res, 401, 'Unauthorized');
    const record: TokenRecord = {
      user: { id: `${serviceUser}-id`, name: serviceUser },
      project: { id: `${serviceProject}-id`, name: serviceProject },
      roles: ['admin', 'service'],
      expiresAt: Date.now() + serviceTokenTtlMs,
      service: true,
    };
    send(res, 201, tokenBody(record), { 'X-Subject-Token': newToken(record) });
  };

  const validate = (req: IncomingMessage, res: ServerResponse) => {
    const caller = live(req.headers['x-auth-token'] as string | undefined);
    if (!caller?.service) return error(res, 401, 'Unauthorized');
    const subjectToken = req.headers['x-subject-token'] as string | undefined;
    const subject = allowExpired
      ? (tokens.get(subjectToken ?? '') ?? null)
      : live(subjectToken);
    if (!subject) return error(res, 404, 'Not Found');
    send(res, 200, tokenBody(subject), { 'X-Subject-Token': subjectToken! });
  };

  const server = http.createServer((req, res) => {
    requests.total++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0];
      if (path === '/v3/auth/tokens' && req.method === 'POST')
        requests.authenticate++;
      if (path === '/v3/auth/tokens' && req.method === 'GET')
        requests.validate++;
      if (down) return error(res, 500, 'Internal Server Error');
      if (path !== '/v3/auth/tokens') return error(res, 404, 'Not Found');
      if (req.method === 'POST')
        return authenticate(req, res, Buffer.concat(chunks).toString());
      if (req.method === 'GET') return validate(req, res);
      error(res, 405, 'Method Not Allowed');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    issueToken(spec = {}) {
      const userId = spec.userId ?? randomUUID().replaceAll('-', '');
      const projectId =
        spec.projectId === undefined
          ? randomUUID().replaceAll('-', '')
          : spec.projectId;
      return newToken({
        user: {
          id: userId,
          name: spec.userName ?? `user-${userId.slice(0, 8)}`,
        },
        project:
          projectId === null
            ? null
            : {
                id: projectId,
                name: spec.projectName ?? `project-${projectId.slice(0, 8)}`,
              },
        roles: spec.roles ?? ['member'],
        expiresAt: Date.now() + (spec.expiresInMs ?? 3_600_000),
        service: false,
      });
    },
    revoke(token) {
      tokens.delete(token);
    },
    revokeServiceTokens() {
      for (const [token, record] of tokens)
        if (record.service) tokens.delete(token);
    },
    setDown(value) {
      down = value;
    },
    setDelay(ms) {
      delayMs = ms;
    },
    setAllowExpired(allow) {
      allowExpired = allow;
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) =>
        server.close((err) => (err ? reject(err) : resolve())),
      );
    },
  };
}

/** App settings for AUTH_STRATEGY=keystone against `keystone` (its default service credentials). */
export function keystoneEnv(
  keystoneUrl: string,
  env: Record<string, string> = {},
): Record<string, string> {
  return {
    AUTH_STRATEGY: 'keystone',
    KEYSTONE_URL: keystoneUrl,
    KEYSTONE_SERVICE_PASSWORD: 'glance-secret',
    ...env,
  };
}
