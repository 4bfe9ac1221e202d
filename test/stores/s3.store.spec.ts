import {
  AbortMultipartUploadCommand,
  DeleteBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { S3Store, type S3StoreOptions } from '../../src/stores/s3.store.js';
import { StoreError, StoreErrorCode } from '../../src/stores/store.error.js';
import { describeStoreContract, expectCode } from './store-contract.js';

const required = [
  'S3_ENDPOINT',
  'S3_REGION',
  'S3_ACCESS_KEY_ID',
  'S3_SECRET_ACCESS_KEY',
  // The segments of multipart uploads are only visible through the Swift API.
  'SWIFT_AUTH_URL',
  'SWIFT_USER',
  'SWIFT_KEY',
];
const missing = required.filter((name) => !process.env[name]);
if (missing.length > 0) {
  throw new Error(
    `${missing.join(', ')} not set: start Swift with ` +
      '`bash shared/services/swift-saio.sh start` and load its env ' +
      '(`set -a; . /tmp/swift-saio/env; set +a`) before running these tests',
  );
}
const env = process.env as Record<string, string>;
const MiB = 1024 * 1024;

function storeOptions(bucket: string): S3StoreOptions {
  return {
    endpoint: env.S3_ENDPOINT,
    region: env.S3_REGION,
    bucket,
    accessKeyId: env.S3_ACCESS_KEY_ID,
    secretAccessKey: env.S3_SECRET_ACCESS_KEY,
    forcePathStyle: true,
  };
}

/** A client of its own, so the listings do not depend on the store under test. */
const s3 = new S3Client({
  endpoint: env.S3_ENDPOINT,
  region: env.S3_REGION,
  forcePathStyle: true,
  credentials: {
    accessKeyId: env.S3_ACCESS_KEY_ID,
    secretAccessKey: env.S3_SECRET_ACCESS_KEY,
  },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});

async function listKeys(bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let ContinuationToken: string | undefined;
  do {
    const page = await s3
      .send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken }))
      .catch((err: Error) =>
        err.name === 'NoSuchBucket' ? null : Promise.reject(err),
      );
    if (!page) return keys;
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    ContinuationToken = page.NextContinuationToken;
  } while (ContinuationToken);
  return keys;
}

async function listUploads(bucket: string) {
  const res = await s3
    .send(new ListMultipartUploadsCommand({ Bucket: bucket }))
    .catch((err: Error) =>
      err.name === 'NoSuchBucket' ? null : Promise.reject(err),
    );
  return res?.Uploads ?? [];
}

/** Swift's s3api keeps multipart parts in the container `<bucket>+segments`. */
async function swiftContainer(container: string, method: 'GET' | 'DELETE') {
  const auth = await fetch(env.SWIFT_AUTH_URL, {
    headers: { 'x-auth-user': env.SWIFT_USER, 'x-auth-key': env.SWIFT_KEY },
  });
  const url = `${auth.headers.get('x-storage-url')}/${encodeURIComponent(container)}`;
  return fetch(`${url}?format=json`, {
    method,
    headers: { 'x-auth-token': auth.headers.get('x-auth-token')! },
  });
}

async function listSegments(bucket: string): Promise<string[]> {
  const res = await swiftContainer(`${bucket}+segments`, 'GET');
  if (res.status === 404) return [];
  expect(res.status).toBe(200);
  return ((await res.json()) as { name: string }[]).map((o) => o.name);
}

describeStoreContract('s3', async () => {
  const bucket = `glance-test-${randomUUID().slice(0, 8)}`;
  const store = new S3Store({ ...storeOptions(bucket), partSize: 5 * MiB });
  return {
    store,
    listObjects: async () => [
      ...(await listKeys(bucket)),
      ...(await listUploads(bucket)).map((u) => `upload:${u.Key}`),
      ...(await listSegments(bucket)).map((name) => `segment:${name}`),
    ],
    cleanup: async () => {
      for (const key of await listKeys(bucket)) {
        await store.delete(`s3://${bucket}/${encodeURIComponent(key)}`);
      }
      for (const { Key, UploadId } of await listUploads(bucket)) {
        await s3.send(
          new AbortMultipartUploadCommand({ Bucket: bucket, Key, UploadId }),
        );
      }
      await s3
        .send(new DeleteBucketCommand({ Bucket: bucket }))
        .catch(() => {});
      await swiftContainer(`${bucket}+segments`, 'DELETE');
      expect(await listKeys(bucket)).toEqual([]);
    },
  };
});

describe('S3Store', () => {
  it('stores an image above the part size as a multipart object', async () => {
    const bucket = `glance-test-${randomUUID().slice(0, 8)}`;
    const store = new S3Store({ ...storeOptions(bucket), partSize: 5 * MiB });
    const data = Buffer.alloc(11 * MiB, 7);
    const stored = await store.add('image', Readable.from([data]), {
      expectedSize: null,
    });
    expect(stored.metadata).toEqual({ parts: 3 });
    const head = await s3.send(
      new HeadObjectCommand({ Bucket: bucket, Key: 'image' }),
    );
    expect(head.ETag).toMatch(/-3"?$/);
    await store.delete(stored.location);
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
    await swiftContainer(`${bucket}+segments`, 'DELETE');
  });

  it('reports a missing bucket as UNAVAILABLE when it may not create it', async () => {
    const store = new S3Store({
      ...storeOptions(`glance-missing-${randomUUID().slice(0, 8)}`),
      createBucket: false,
    });
    const data = Readable.from([Buffer.from('abc')]);
    await expectCode(
      store.add('x', data, { expectedSize: 3 }),
      StoreErrorCode.Unavailable,
    );
    await expect(store.check()).rejects.toBeInstanceOf(StoreError);
  });

  it('answers WRITE_DENIED when the credentials are refused', async () => {
    const store = new S3Store({
      ...storeOptions('glance-never-created'),
      secretAccessKey: 'wrong-secret',
    });
    await expectCode(store.check(), StoreErrorCode.WriteDenied);
    const data = Readable.from([Buffer.from('abc')]);
    await expectCode(
      store.add('x', data, { expectedSize: 3 }),
      StoreErrorCode.WriteDenied,
    );
  });

  it('fails fast with UNAVAILABLE when S3 cannot be reached', async () => {
    const store = new S3Store({
      ...storeOptions('glance-unreachable'),
      endpoint: 'http://127.0.0.1:1',
      requestTimeoutMs: 2000,
    });
    const started = Date.now();
    const data = Readable.from([Buffer.from('abc')]);
    await expectCode(
      store.add('x', data, { expectedSize: 3 }),
      StoreErrorCode.Unavailable,
    );
    await expectCode(store.check(), StoreErrorCode.Unavailable);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
