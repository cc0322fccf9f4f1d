import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { HeadObjectCommandOutput, ListObjectsV2CommandOutput } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Readable } from 'node:stream';

import { InvalidInputError, throwIfAborted } from '../../errors.js';
import {
  nullStorageObserver,
  type GetOptions,
  type ObjectInfo,
  type PutOptions,
  type PutResult,
  type SignalOptions,
  type StorageDriver,
  type StorageObserver,
} from '../storage-driver.js';
import { assertValidKey, assertValidPrefix, assertValidRange } from '../storage-input.js';
import { abortMultipartUpload, uploadObject } from './multipart-upload.js';
import { quietSdkNodeVersionWarning } from './node-version-warning.js';
import { openRangedDownload } from './ranged-download.js';
import { resolveS3DriverOptions, type ResolvedS3DriverOptions, type S3DriverOptions } from './s3-driver-options.js';
import { S3Requester } from './s3-requester.js';

/** Longest presigned URL lifetime S3 accepts with SigV4 (7 days). */
export const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

/**
 * Stores objects in an S3 bucket (or an S3-compatible store) under a key prefix.
 *
 * Uploads are multipart with `queueSize` parts of `partSize` bytes in flight, so memory is bounded
 * by about (queueSize + 2) x partSize (see `multipart-upload.ts`); downloads are parallel ranged
 * GETs with the same bound (see `ranged-download.ts`). Every request is retried on transient
 * failures with exponential backoff and full jitter, each part and range on its own.
 *
 * Errors: `NotFoundError` for NoSuchKey/404, `InvalidInputError` for bad keys, ranges and options,
 * `IntegrityError` when a put's body does not have its declared size, `AbortedError` on abort;
 * anything else as `SnapworkerError` `s3: <op> <key>: …` with the SDK error as cause.
 */
export class S3Driver implements StorageDriver {
  readonly kind = 's3';
  readonly options: ResolvedS3DriverOptions;
  private readonly client: S3Client;
  private readonly requester: S3Requester;
  private readonly observer: StorageObserver;

  constructor(options: S3DriverOptions) {
    this.options = resolveS3DriverOptions(options);
    const o = this.options;
    this.observer = o.observer ?? nullStorageObserver;
    const agent = { keepAlive: true, maxSockets: Math.max(16, o.queueSize * 2) };
    quietSdkNodeVersionWarning();
    this.client = new S3Client({
      region: o.region,
      endpoint: o.endpoint,
      forcePathStyle: o.forcePathStyle,
      requestChecksumCalculation: o.checksumMode,
      responseChecksumValidation: o.checksumMode,
      // Retries are ours (per part, per range, with stall detection); see S3Requester.
      maxAttempts: 1,
      requestHandler: {
        connectionTimeout: o.connectTimeoutMs,
        socketTimeout: o.stallTimeoutMs,
        httpAgent: agent,
        httpsAgent: agent,
      },
    });
    this.requester = new S3Requester(
      this.client,
      o.bucket,
      { maxAttempts: o.maxAttempts, baseDelayMs: o.retryBaseDelayMs, maxDelayMs: o.retryMaxDelayMs },
      this.observer,
    );
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<PutResult> {
    const objectKey = this.objectKey('put', key);
    throwIfAborted(options.signal);
    return uploadObject(
      {
        requester: this.requester,
        objectKey,
        key,
        partSize: this.options.partSize,
        queueSize: this.options.queueSize,
        sendChecksums: this.options.checksumMode === 'WHEN_SUPPORTED',
        observer: this.observer,
      },
      body,
      options,
    );
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const objectKey = this.objectKey('get', key);
    assertValidRange(this.kind, key, options.range);
    return openRangedDownload(
      {
        requester: this.requester,
        objectKey,
        key,
        partSize: this.options.partSize,
        queueSize: this.options.queueSize,
        stallTimeoutMs: this.options.stallTimeoutMs,
        observer: this.observer,
      },
      options,
    );
  }

  async head(key: string, options: SignalOptions = {}): Promise<ObjectInfo> {
    const objectKey = this.objectKey('head', key);
    const head = await this.requester.send<HeadObjectCommandOutput>(
      'head',
      key,
      new HeadObjectCommand({ Bucket: this.options.bucket, Key: objectKey }),
      options.signal,
    );
    return { key, size: head.ContentLength ?? 0, modifiedAt: head.LastModified ?? new Date(0) };
  }

  async *list(prefix: string, options: SignalOptions = {}): AsyncIterable<ObjectInfo> {
    assertValidPrefix(this.kind, prefix);
    const base = this.options.prefix ? `${this.options.prefix}/` : '';
    let token: string | undefined;
    do {
      const page = await this.requester.send<ListObjectsV2CommandOutput>(
        'list',
        prefix,
        new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: base + prefix, ContinuationToken: token }),
        options.signal,
      );
      for (const object of page.Contents ?? []) {
        if (!object.Key?.startsWith(base)) continue;
        yield { key: object.Key.slice(base.length), size: object.Size ?? 0, modifiedAt: object.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string, options: SignalOptions = {}): Promise<void> {
    const objectKey = this.objectKey('delete', key);
    try {
      await this.requester.send('delete', key, new DeleteObjectCommand({ Bucket: this.options.bucket, Key: objectKey }), options.signal);
    } catch (err) {
      if (!(err instanceof Error && err.name === 'NotFoundError')) throw err;
    }
  }

  /** Aborts a multipart upload left by a crashed attempt; an upload already gone is fine. */
  async abortUpload(key: string, uploadId: string, options: SignalOptions = {}): Promise<void> {
    const objectKey = this.objectKey('abort_upload', key);
    if (!uploadId) throw new InvalidInputError(`s3: abort_upload ${key}: empty upload id`);
    await abortMultipartUpload(this.requester, objectKey, key, uploadId, options.signal);
  }

  /**
   * A GET URL for the object valid for `expiresInSeconds` (1 s to 7 days), signed with the
   * credentials of the default chain. Does not check that the object exists.
   */
  async presign(key: string, expiresInSeconds: number): Promise<string> {
    const objectKey = this.objectKey('presign', key);
    if (!Number.isSafeInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_PRESIGN_SECONDS) {
      throw new InvalidInputError(`s3: presign ${key}: expiry must be 1 to ${MAX_PRESIGN_SECONDS} seconds, got ${expiresInSeconds}`);
    }
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.options.bucket, Key: objectKey }), {
      expiresIn: expiresInSeconds,
    });
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private objectKey(operation: string, key: string): string {
    assertValidKey(this.kind, operation, key);
    return this.options.prefix ? `${this.options.prefix}/${key}` : key;
  }
}
