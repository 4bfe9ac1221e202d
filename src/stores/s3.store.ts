import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import type {
  AddOptions,
  ByteRange,
  ImageReadResult,
  ImageStore,
  StoredImage,
} from './image-store.interface.js';
import { ChunkReader } from './chunk-reader.js';
import { StoreError, StoreErrorCode } from './store.error.js';

export interface S3StoreOptions {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
  createBucket?: boolean;
  /** Multipart part size; also the largest image sent as a single PutObject. */
  partSize?: number;
  /** Socket idle timeout of every request. */
  requestTimeoutMs?: number;
}

const MiB = 1024 * 1024;
const MIN_PART_SIZE = 5 * MiB;
/** Swift's s3api allows 1000 parts (AWS 10000); larger announced images get larger parts. */
const MAX_PARTS = 1000;
const PREFIX = 's3://';

export class S3Store implements ImageStore {
  readonly name = 's3';
  readonly schemes = ['s3'];
  readonly writable = true;

  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly createBucket: boolean;
  private readonly partSize: number;
  private bucketReady?: Promise<void>;

  constructor(options: S3StoreOptions) {
    const timeout = options.requestTimeoutMs ?? 60_000;
    this.bucket = options.bucket;
    this.createBucket = options.createBucket ?? true;
    this.partSize = Math.max(options.partSize ?? 16 * MiB, MIN_PART_SIZE);
    this.client = new S3Client({
      endpoint: options.endpoint,
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      credentials: {
        accessKeyId: options.accessKeyId,
        secretAccessKey: options.secretAccessKey,
      },
      // Newer SDKs otherwise send aws-chunked bodies, which Swift's s3api rejects.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // An unreachable backend should fail in seconds, not after a long retry loop.
      maxAttempts: 2,
      requestHandler: {
        connectionTimeout: Math.min(timeout, 3000),
        socketTimeout: timeout,
      },
    });
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
    // Also ends our own requests still running when the add fails.
    const requests = new AbortController();
    const abortSignal = signal
      ? AbortSignal.any([signal, requests.signal])
      : requests.signal;
    const target = { Bucket: this.bucket, Key: imageId };
    const location = `${PREFIX}${enc(this.bucket)}/${enc(imageId)}`;
    let writing = false;
    let uploadId: string | undefined;
    let inFlight: Promise<unknown> | undefined;
    try {
      await this.ensureBucket();
      const partSize = Math.max(
        this.partSize,
        Math.ceil((expectedSize ?? 0) / MAX_PARTS),
      );
      let part = await reader.read(partSize);
      writing = true;
      if (await reader.atEnd()) {
        const put = { ...target, Body: part, ContentLength: part.length };
        await this.client.send(new PutObjectCommand(put), { abortSignal });
        return { location, size: part.length };
      }
      const create = new CreateMultipartUploadCommand(target);
      ({ UploadId: uploadId } = await this.client.send(create, {
        abortSignal,
      }));
      const parts: CompletedPart[] = [];
      let size = 0;
      // Upload one part while reading the next: at most two parts in memory.
      while (part.length > 0) {
        const PartNumber = parts.length + 1;
        const upload = new UploadPartCommand({
          ...target,
          UploadId: uploadId,
          PartNumber,
          Body: part,
          ContentLength: part.length,
        });
        const uploading = this.client.send(upload, { abortSignal });
        inFlight = uploading;
        const [{ ETag }, next] = await Promise.all([
          uploading,
          reader.read(partSize),
        ]);
        parts.push({ PartNumber, ETag });
        size += part.length;
        part = next;
      }
      const complete = new CompleteMultipartUploadCommand({
        ...target,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
      });
      await this.client.send(complete, { abortSignal });
      return { location, size, metadata: { parts: parts.length } };
    } catch (err) {
      reader.abandon();
      requests.abort();
      await inFlight?.catch(() => {});
      if (writing) await this.discard(imageId);
      if (signal?.aborted) throw signal.reason;
      if (reader.sourceError !== undefined) throw reader.sourceError;
      const error = toStoreError(err, `add ${imageId}`);
      if (error.code !== StoreErrorCode.NotFound) throw error;
      const message = `bucket ${this.bucket} is missing`;
      throw new StoreError(StoreErrorCode.Unavailable, message);
    } finally {
      signal?.removeEventListener('abort', stop);
    }
  }

  async get(location: string, range?: ByteRange): Promise<ImageReadResult> {
    const Range = range ? `bytes=${range.start}-${range.end}` : undefined;
    const command = new GetObjectCommand({ ...parseLocation(location), Range });
    const res = await this.client
      .send(command)
      .catch((err: unknown) =>
        Promise.reject(toStoreError(err, `get ${location}`)),
      );
    return { stream: res.Body as Readable, size: res.ContentLength ?? null };
  }

  async getSize(location: string): Promise<number> {
    const command = new HeadObjectCommand(parseLocation(location));
    const res = await this.client
      .send(command)
      .catch((err: unknown) =>
        Promise.reject(toStoreError(err, `head ${location}`)),
      );
    return res.ContentLength ?? 0;
  }

  async delete(location: string): Promise<void> {
    const command = new DeleteObjectCommand(parseLocation(location));
    await this.client.send(command).catch((err: unknown) => {
      const error = toStoreError(err, `delete ${location}`);
      if (error.code !== StoreErrorCode.NotFound) throw error;
    });
  }

  /**
   * Whatever a dead upload of `imageId` left: every unfinished multipart
   * upload of its key, and the object if the upload got as far as writing it
   * (the registry never recorded it, so it is no image).
   */
  async removePartial(imageId: string): Promise<void> {
    const Bucket = this.bucket;
    let markers: { KeyMarker?: string; UploadIdMarker?: string } = {};
    for (;;) {
      const list = new ListMultipartUploadsCommand({
        Bucket,
        Prefix: imageId,
        ...markers,
      });
      const page = await this.client.send(list).catch((err: unknown) => {
        const error = toStoreError(err, `list uploads of ${imageId}`);
        if (error.code !== StoreErrorCode.NotFound) throw error;
      });
      for (const { Key, UploadId } of page?.Uploads ?? []) {
        if (Key !== imageId) continue;
        const abort = new AbortMultipartUploadCommand({ Bucket, Key, UploadId });
        await this.client.send(abort).catch((err: unknown) => {
          const error = toStoreError(err, `abort upload of ${imageId}`);
          if (error.code !== StoreErrorCode.NotFound) throw error;
        });
      }
      if (!page?.IsTruncated) break;
      markers = {
        KeyMarker: page.NextKeyMarker,
        UploadIdMarker: page.NextUploadIdMarker,
      };
    }
    await this.delete(`${PREFIX}${enc(Bucket)}/${enc(imageId)}`);
  }

  async check(): Promise<void> {
    const command = new HeadBucketCommand({ Bucket: this.bucket });
    await this.client.send(command).catch((err: unknown) => {
      const error = toStoreError(err, `head bucket ${this.bucket}`);
      if (error.code !== StoreErrorCode.NotFound || !this.createBucket)
        throw error;
    });
  }

  /**
   * Best effort: aborts every unfinished upload of `key`, including one whose
   * create was cut off before its id arrived, and deletes any written object.
   */
  private async discard(key: string): Promise<void> {
    const Bucket = this.bucket;
    const list = new ListMultipartUploadsCommand({ Bucket, Prefix: key });
    const listed = await this.client.send(list).catch(() => undefined);
    for (const { Key, UploadId } of listed?.Uploads ?? []) {
      if (Key !== key) continue;
      const abort = new AbortMultipartUploadCommand({ Bucket, Key, UploadId });
      await this.client.send(abort).catch(() => {});
    }
    const remove = new DeleteObjectCommand({ Bucket, Key: key });
    await this.client.send(remove).catch(() => {});
  }

  private ensureBucket(): Promise<void> {
    if (!this.createBucket) return Promise.resolve();
    const command = new CreateBucketCommand({ Bucket: this.bucket });
    this.bucketReady ??= this.client.send(command).then(
      () => undefined,
      (err: unknown) => {
        const name = err instanceof Error ? err.name : '';
        if (name === 'BucketAlreadyOwnedByYou') return;
        this.bucketReady = undefined;
        throw toStoreError(err, `create bucket ${this.bucket}`);
      },
    );
    return this.bucketReady;
  }
}

function enc(part: string): string {
  return encodeURIComponent(part);
}

function parseLocation(location: string): { Bucket: string; Key: string } {
  const rest = location.startsWith(PREFIX) ? location.slice(PREFIX.length) : '';
  const slash = rest.indexOf('/');
  try {
    const Bucket = decodeURIComponent(rest.slice(0, slash));
    const Key = decodeURIComponent(rest.slice(slash + 1));
    if (slash > 0 && Key) return { Bucket, Key };
  } catch {
    // Malformed percent-encoding: reported below.
  }
  const message = `not an s3 location: ${location}`;
  throw new StoreError(StoreErrorCode.BadLocation, message);
}

function toStoreError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  const status = (err as { $metadata?: { httpStatusCode?: number } })?.$metadata
    ?.httpStatusCode;
  const name = err instanceof Error ? err.name : '';
  const reason = err instanceof Error ? err.message || name : String(err);
  const code =
    status === 404 || name === 'NoSuchKey' || name === 'NotFound'
      ? StoreErrorCode.NotFound
      : status === 401 || status === 403
        ? StoreErrorCode.WriteDenied
        : status === 413 || status === 507 || name === 'EntityTooLarge'
          ? StoreErrorCode.StorageFull
          : StoreErrorCode.Unavailable;
  const message = `${what}: ${reason}${status ? ` (${status})` : ''}`;
  return new StoreError(code, message, { cause: err });
}
