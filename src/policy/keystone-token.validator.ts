import { createHash } from 'node:crypto';

export interface KeystoneTokenValidatorOptions {
  /** Keystone endpoint, with or without the trailing /v3. */
  url: string;
  serviceUser: string;
  servicePassword: string;
  serviceProject: string;
  serviceUserDomain?: string;
  serviceProjectDomain?: string;
  /** How long a valid identity is cached (never past the token's expiry). */
  cacheTtlMs?: number;
  cacheMaxEntries?: number;
  /** Limit of each request to Keystone, response body included. */
  timeoutMs?: number;
}

export interface KeystoneIdentity {
  userId: string;
  userName: string | null;
  projectId: string | null;
  projectName: string | null;
  /** Lowercased role names. */
  roles: string[];
  expiresAt: Date;
}

export type KeystoneAuthErrorKind = 'invalid' | 'unavailable';

/** `invalid`: the token is not (or no longer) valid; `unavailable`: Keystone could not tell. */
export class KeystoneAuthError extends Error {
  override readonly name = 'KeystoneAuthError';

  constructor(
    readonly kind: KeystoneAuthErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

interface ServiceToken {
  token: string;
  refreshAt: number;
}

interface CachedIdentity {
  identity: KeystoneIdentity;
  until: number;
}

const MAX_RESPONSE_BYTES = 1024 * 1024;
const MAX_TOKEN_LENGTH = 16 * 1024;
// Printable ASCII only: anything else cannot be a token nor go in a header.
const TOKEN_SYNTAX = /^[\x21-\x7e]+$/;

/**
 * Validates user tokens against Keystone v3 (GET /v3/auth/tokens) with a
 * service token, caching valid identities by the token's SHA-256.
 */
export class KeystoneTokenValidator {
  private readonly tokensUrl: string;
  private readonly options: Required<
    Omit<KeystoneTokenValidatorOptions, 'url'>
  >;
  private readonly cache = new Map<string, CachedIdentity>();
  private readonly inFlight = new Map<string, Promise<KeystoneIdentity>>();
  private serviceToken: ServiceToken | null = null;
  private serviceAuth: Promise<ServiceToken> | null = null;

  constructor({ url, ...options }: KeystoneTokenValidatorOptions) {
    const base = url.replace(/\/+$/, '').replace(/\/v3$/, '');
    this.tokensUrl = `${base}/v3/auth/tokens?nocatalog`;
    this.options = {
      serviceUserDomain: 'Default',
      serviceProjectDomain: 'Default',
      cacheTtlMs: 300_000,
      cacheMaxEntries: 10_000,
      timeoutMs: 5_000,
      ...options,
    };
  }

  async validate(userToken: string): Promise<KeystoneIdentity> {
    if (userToken.length > MAX_TOKEN_LENGTH || !TOKEN_SYNTAX.test(userToken)) {
      throw new KeystoneAuthError('invalid', 'Malformed token');
    }
    const key = createHash('sha256').update(userToken).digest('hex');
    const cached = this.cache.get(key);
    if (cached) {
      if (cached.until > Date.now()) return cached.identity;
      this.cache.delete(key);
    }
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.fetchIdentity(userToken)
        .then((identity) => {
          this.remember(key, identity);
          return identity;
        })
        .finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  private remember(key: string, identity: KeystoneIdentity): void {
    const until = Math.min(
      Date.now() + this.options.cacheTtlMs,
      identity.expiresAt.getTime(),
    );
    if (this.options.cacheMaxEntries <= 0) return;
    this.cache.delete(key);
    for (const oldest of this.cache.keys()) {
      if (this.cache.size < this.options.cacheMaxEntries) break;
      this.cache.delete(oldest);
    }
    this.cache.set(key, { identity, until });
  }

  private async fetchIdentity(userToken: string): Promise<KeystoneIdentity> {
    let service = await this.getServiceToken();
    let res = await this.checkToken(service.token, userToken);
    if (res.status === 401) {
      // The service token may have expired or been revoked early: one fresh try.
      this.dropServiceToken(service);
      service = await this.getServiceToken();
      res = await this.checkToken(service.token, userToken);
    }
    // A 401 with a just-issued service token can only be about the subject.
    if (res.status === 404 || res.status === 401) {
      throw new KeystoneAuthError('invalid', 'Token is not valid');
    }
    if (res.status !== 200) {
      throw new KeystoneAuthError(
        'unavailable',
        `Keystone answered ${res.status} to token validation`,
      );
    }
    const identity = parseIdentity(res.body);
    if (identity.expiresAt.getTime() <= Date.now()) {
      throw new KeystoneAuthError('invalid', 'Token has expired');
    }
    return identity;
  }

  private checkToken(
    serviceToken: string,
    userToken: string,
  ): Promise<{ status: number; body: unknown }> {
    return this.request({
      method: 'GET',
      headers: { 'X-Auth-Token': serviceToken, 'X-Subject-Token': userToken },
    });
  }

  private getServiceToken(): Promise<ServiceToken> {
    if (this.serviceToken && this.serviceToken.refreshAt > Date.now()) {
      return Promise.resolve(this.serviceToken);
    }
    this.serviceAuth ??= this.authenticate()
      .then((service) => {
        this.serviceToken = service;
        return service;
      })
      .finally(() => {
        this.serviceAuth = null;
      });
    return this.serviceAuth;
  }

  private dropServiceToken(stale: ServiceToken): void {
    // Concurrent callers may already have replaced it.
    if (this.serviceToken === stale) this.serviceToken = null;
  }

  private async authenticate(): Promise<ServiceToken> {
    const o = this.options;
    const body = JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: {
            user: {
              name: o.serviceUser,
              password: o.servicePassword,
              domain: { name: o.serviceUserDomain },
            },
          },
        },
        scope: {
          project: {
            name: o.serviceProject,
            domain: { name: o.serviceProjectDomain },
          },
        },
      },
    });
    const res = await this.request({
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
    });
    if (res.status !== 201 && res.status !== 200) {
      // Wrong service credentials say nothing about the user's token.
      throw new KeystoneAuthError(
        'unavailable',
        `Keystone answered ${res.status} to the service authentication`,
      );
    }
    const expiresAt = Date.parse(
      String((res.body as any)?.token?.expires_at ?? ''),
    );
    if (!res.subjectToken || Number.isNaN(expiresAt)) {
      throw new KeystoneAuthError(
        'unavailable',
        'Keystone sent a malformed service token response',
      );
    }
    const now = Date.now();
    const margin = Math.min(60_000, Math.max(0, expiresAt - now) / 10);
    return { token: res.subjectToken, refreshAt: expiresAt - margin };
  }

  private async request({
    method,
    headers,
    body,
  }: {
    method: 'GET' | 'POST';
    headers: Record<string, string>;
    body?: string;
  }): Promise<{ status: number; body: unknown; subjectToken: string | null }> {
    try {
      const res = await fetch(this.tokensUrl, {
        method,
        headers: { Accept: 'application/json', ...headers },
        ...(body !== undefined && { body }),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      const subjectToken = res.headers.get('x-subject-token');
      if (res.status !== 200 && res.status !== 201) {
        await res.body?.cancel();
        return { status: res.status, body: null, subjectToken };
      }
      return {
        status: res.status,
        body: await readJson(res),
        subjectToken,
      };
    } catch (err) {
      if (err instanceof KeystoneAuthError) throw err;
      throw new KeystoneAuthError(
        'unavailable',
        `Keystone is unreachable: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
}

async function readJson(res: Response): Promise<unknown> {
  const declared = Number(res.headers.get('content-length'));
  if (declared > MAX_RESPONSE_BYTES) {
    await res.body?.cancel();
    throw new KeystoneAuthError('unavailable', 'Keystone response too large');
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body ?? []) {
    size += chunk.byteLength;
    if (size > MAX_RESPONSE_BYTES) {
      throw new KeystoneAuthError('unavailable', 'Keystone response too large');
    }
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new KeystoneAuthError('unavailable', 'Keystone sent invalid JSON', {
      cause: err,
    });
  }
}

function parseIdentity(body: unknown): KeystoneIdentity {
  const token = (body as any)?.token;
  const user = token?.user;
  const expiresAt = new Date(String(token?.expires_at ?? ''));
  if (
    typeof user?.id !== 'string' ||
    user.id === '' ||
    Number.isNaN(expiresAt.getTime())
  ) {
    throw new KeystoneAuthError(
      'unavailable',
      'Keystone sent a malformed token validation response',
    );
  }
  const project = token.project;
  const roles: unknown[] = Array.isArray(token.roles) ? token.roles : [];
  return {
    userId: user.id,
    userName: stringOrNull(user.name),
    projectId: stringOrNull(project?.id),
    projectName: stringOrNull(project?.name),
    roles: roles
      .map((r) => stringOrNull((r as any)?.name)?.toLowerCase() ?? '')
      .filter(Boolean),
    expiresAt,
  };
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}
