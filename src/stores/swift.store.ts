import http, {
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type {
  AddOptions,
  ByteRange,
  ImageReadResult,
  ImageStore,
  StoredImage,
} from './image-store.interface.js';
import { ChunkReader } from './chunk-reader.js';
import { StoreError, StoreErrorCode } from './store.error.js';

export interface SwiftStoreOptions {
  /** tempauth v1 URL, e.g. http://127.0.0.1:8080/auth/v1.0 */
  authUrl: string;
  user: string;
  key: string;
  container: string;
  createContainer?: boolean;
  /** Known sizes up to this are one object; larger or unknown sizes become an SLO. */
  largeObjectSize?: number;
  largeObjectChunkSize?: number;
  /** Socket idle timeout of every request. */
  requestTimeoutMs?: number;
}

interface RequestOptions {
  headers?: OutgoingHttpHeaders;
  body?: Readable | string;
  signal?: AbortSignal;
}

interface Reply extends IncomingMessage {
  statusCode: number;
}

const MiB = 1024 ** 2;
const PREFIX = 'swift://';

export class SwiftStore implements ImageStore {
  readonly name = 'swift';
  readonly schemes = ['swift'];
  readonly writable = true;

  private readonly options: Required<SwiftStoreOptions>;
  private auth?: Promise<{ token: string; storageUrl: string }>;

  constructor(options: SwiftStoreOptions) {
    this.options = {
      createContainer: true,
      largeObjectSize: 5 * 1024 * MiB,
      largeObjectChunkSize: 200 * MiB,
      requestTimeoutMs: 60_000,
      ...options,
    };
  }

  async add(
    imageId: string,
    data: Readable,
    { expectedSize, signal }: AddOptions,
  ): Promise<StoredImage> {
    signal?.throwIfAborted();
    const reader = new ChunkReader(data);
    const stop = () => reader.abandon();
    signal?.addEventListener('abort', stop, { once: true });
    const written: string[] = [];
    const location = `${PREFIX}${enc(this.options.container)}/${enc(imageId)}`;
    try {
      await this.prepareContainer(signal);
      if (
        expectedSize !== null &&
        expectedSize <= this.options.largeObjectSize
      ) {
        written.push(imageId);
        await this.putObject(imageId, reader.stream(Infinity), signal);
        return { location, size: reader.total };
      }
      const segments = await this.putSegments(imageId, reader, signal, written);
      return { location, size: reader.total, metadata: { segments } };
    } catch (err) {
      reader.abandon();
      // Newest first: the manifest goes before the segments it names.
      for (const name of written.reverse()) {
        await this.deleteObject(this.options.container, name).catch(() => {});
      }
      if (signal?.aborted) throw signal.reason;
      if (reader.sourceError !== undefined) throw reader.sourceError;
      throw toStoreError(err, `add ${imageId}`);
    } finally {
      signal?.removeEventListener('abort', stop);
    }
  }

  async get(location: string, range?: ByteRange): Promise<ImageReadResult> {
    const headers = range ? { range: `bytes=${range.start}-${range.end}` } : {};
    const res = await this.call('GET', parseLocation(location), { headers });
    if (res.statusCode !== 200 && res.statusCode !== 206) {
      throw failed(res, `GET ${location}`);
    }
    return { stream: res, size: contentLength(res) };
  }

  async getSize(location: string): Promise<number> {
    const res = await this.call('HEAD', parseLocation(location));
    if (res.statusCode >= 300) throw failed(res, `HEAD ${location}`);
    res.resume();
    return contentLength(res) ?? 0;
  }

  delete(location: string): Promise<void> {
    return this.deleteObject(...parseLocation(location));
  }

  /**
   * Whatever a dead upload of `imageId` left: the object (plain, or an SLO
   * manifest with the segments it names) and any `<id>-NNNNN` segment no
   * manifest names yet. Nothing here is an image: the registry never
   * recorded this location.
   */
  async removePartial(imageId: string): Promise<void> {
    const { container } = this.options;
    await this.deleteObject(container, imageId);
    const prefix = `${imageId}-`;
    for (const name of await this.listObjects(prefix)) {
      if (!/^\d+$/.test(name.slice(prefix.length))) continue;
      await this.deleteObject(container, name);
    }
  }

  async check(): Promise<void> {
    const res = await this.call('HEAD', [this.options.container]);
    res.resume();
    if (res.statusCode === 404 && this.options.createContainer) return;
    if (res.statusCode >= 300) throw failed(res, 'HEAD container');
  }

  /** Writes the source as `<id>-00001`... segments plus an SLO manifest; returns the segment count. */
  private async putSegments(
    imageId: string,
    reader: ChunkReader,
    signal: AbortSignal | undefined,
    written: string[],
  ): Promise<number> {
    // Nothing to segment: a plain empty object is simpler to read back.
    if (await reader.atEnd()) {
      written.push(imageId);
      await this.putObject(imageId, '', signal);
      return 0;
    }
    const manifest: { path: string; etag: string; size_bytes: number }[] = [];
    do {
      const name = `${imageId}-${String(manifest.length + 1).padStart(5, '0')}`;
      written.push(name);
      const before = reader.total;
      const segment = reader.stream(this.options.largeObjectChunkSize);
      const etag = await this.putObject(name, segment, signal);
      const path = `/${this.options.container}/${name}`;
      manifest.push({ path, etag, size_bytes: reader.total - before });
    } while (!(await reader.atEnd()));
    const body = JSON.stringify(manifest);
    written.push(imageId);
    await this.putObject(imageId, body, signal, '?multipart-manifest=put');
    return manifest.length;
  }

  /** PUTs one object into the container and returns its ETag. */
  private async putObject(
    object: string,
    body: Readable | string,
    signal?: AbortSignal,
    query = '',
  ): Promise<string> {
    const headers = { 'content-type': 'application/octet-stream' };
    const path = [this.options.container, object] as const;
    const res = await this.call('PUT', path, { headers, body, signal }, query);
    if (res.statusCode !== 201) throw failed(res, `PUT ${object}`);
    res.resume();
    return String(res.headers.etag ?? '').replaceAll('"', '');
  }

  private async deleteObject(container: string, object: string): Promise<void> {
    const head = await this.call('HEAD', [container, object]);
    head.resume();
    if (head.statusCode === 404) return;
    if (head.statusCode >= 300) throw failed(head, `HEAD ${object}`);
    const slo = String(head.headers['x-static-large-object']) === 'True';
    const query = slo ? '?multipart-manifest=delete' : '';
    const headers = { accept: 'application/json' };
    const res = await this.call(
      'DELETE',
      [container, object],
      { headers },
      query,
    );
    if (res.statusCode >= 300 && res.statusCode !== 404) {
      throw failed(res, `DELETE ${object}`);
    }
    if (!slo || res.statusCode === 404) return void res.resume();
    let text = '';
    for await (const chunk of res) text += chunk;
    // A manifest delete answers 200 and reports the real outcome in the body.
    const status = parseInt(JSON.parse(text)['Response Status'], 10);
    if (status >= 300) throw statusError(status, `DELETE ${object}: ${text}`);
  }

  /** Names in the container that start with `prefix` (none when it is missing). */
  private async listObjects(prefix: string): Promise<string[]> {
    const names: string[] = [];
    for (;;) {
      const marker = names.at(-1) ?? '';
      const query = `?format=json&prefix=${enc(prefix)}&marker=${enc(marker)}`;
      const res = await this.call('GET', [this.options.container], {}, query);
      if (res.statusCode === 404 || res.statusCode === 204) {
        res.resume();
        return names;
      }
      if (res.statusCode !== 200) throw failed(res, 'GET container');
      let text = '';
      for await (const chunk of res) text += chunk;
      const page = (JSON.parse(text) as { name: string }[]).map((o) => o.name);
      if (page.length === 0) return names;
      names.push(...page);
    }
  }

  /** Creates or checks the container before each add; this also renews a stale token. */
  private async prepareContainer(signal?: AbortSignal): Promise<void> {
    const method = this.options.createContainer ? 'PUT' : 'HEAD';
    const res = await this.call(method, [this.options.container], { signal });
    res.resume();
    if (res.statusCode === 404) {
      const message = `container ${this.options.container} is missing`;
      throw new StoreError(StoreErrorCode.Unavailable, message);
    }
    if (res.statusCode >= 300) throw failed(res, `${method} container`);
  }

  /** An authenticated request; re-authenticates once on 401 when the body can be replayed. */
  private async call(
    method: string,
    path: readonly string[],
    options: RequestOptions = {},
    query = '',
  ): Promise<Reply> {
    const replayable = !(options.body instanceof Readable);
    for (let attempt = 0; ; attempt++) {
      const { token, storageUrl } = await this.authenticate();
      const url = `${storageUrl}/${path.map(enc).join('/')}${query}`;
      const headers = { ...options.headers, 'x-auth-token': token };
      const res = await this.send(url, method, { ...options, headers });
      if (res.statusCode !== 401 || attempt > 0 || !replayable) return res;
      res.resume();
      this.auth = undefined;
    }
  }

  private authenticate(): Promise<{ token: string; storageUrl: string }> {
    const { authUrl, user, key } = this.options;
    const headers = { 'x-auth-user': user, 'x-auth-key': key };
    this.auth ??= this.send(authUrl, 'GET', { headers })
      .then((res) => {
        res.resume();
        if (res.statusCode >= 300) throw failed(res, 'swift auth');
        const token = res.headers['x-auth-token'];
        const storageUrl = res.headers['x-storage-url'];
        if (typeof token === 'string' && typeof storageUrl === 'string') {
          return { token, storageUrl };
        }
        const message = 'swift auth: no token in the answer';
        throw new StoreError(StoreErrorCode.Unavailable, message);
      })
      .catch((err) => {
        this.auth = undefined;
        throw err;
      });
    return this.auth;
  }

  /** One HTTP exchange; resolves once the response headers arrive. */
  private send(
    url: string,
    method: string,
    options: RequestOptions,
  ): Promise<Reply> {
    const { headers, body, signal } = options;
    const timeout = this.options.requestTimeoutMs;
    const client = url.startsWith('https:') ? https : http;
    return new Promise<Reply>((resolve, reject) => {
      const req = client.request(url, { method, headers, signal });
      req.on('response', (res) => resolve(res as Reply));
      req.on('error', (err) => reject(toStoreError(err, `${method} ${url}`)));
      req.setTimeout(timeout, () => {
        req.destroy(new Error(`no answer within ${timeout} ms`));
      });
      if (body instanceof Readable) pipeline(body, req).catch(reject);
      else req.end(body);
    });
  }
}

function enc(part: string): string {
  return encodeURIComponent(part);
}

function parseLocation(location: string): [container: string, object: string] {
  const rest = location.startsWith(PREFIX) ? location.slice(PREFIX.length) : '';
  const slash = rest.indexOf('/');
  try {
    const container = decodeURIComponent(rest.slice(0, slash));
    const object = decodeURIComponent(rest.slice(slash + 1));
    if (slash > 0 && object) return [container, object];
  } catch {
    // Malformed percent-encoding: reported below.
  }
  const message = `not a swift location: ${location}`;
  throw new StoreError(StoreErrorCode.BadLocation, message);
}

function contentLength(res: IncomingMessage): number | null {
  const value = res.headers['content-length'];
  return value === undefined ? null : Number(value);
}

/** Drains an unwanted response and describes its status. */
function failed(res: Reply, what: string): StoreError {
  res.resume();
  return statusError(res.statusCode, what);
}

function statusError(status: number, what: string): StoreError {
  const message = `${what}: swift answered ${status}`;
  const code =
    status === 404
      ? StoreErrorCode.NotFound
      : status === 401 || status === 403
        ? StoreErrorCode.WriteDenied
        : status === 413 || status === 507
          ? StoreErrorCode.StorageFull
          : StoreErrorCode.Unavailable;
  return new StoreError(code, message);
}

function toStoreError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  const code = StoreErrorCode.Unavailable;
  return new StoreError(code, `${what}: ${reason}`, { cause: err });
}
