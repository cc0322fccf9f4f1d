import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type CreateMultipartUploadCommandOutput,
  type HeadObjectCommandOutput,
  type UploadPartCommandOutput,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';

import { AbortedError, errorMessage, SnapworkerError } from '../../errors.js';
import type { PartInfo, PutOptions, PutResult, StorageObserver } from '../storage-driver.js';
import { partSizeForKnownSize, partSizeForPart } from './part-size.js';
import { readParts, type BodyPart } from './part-reader.js';
import { s3Error } from './s3-errors.js';
import type { S3Requester } from './s3-requester.js';

export interface UploadTarget {
  requester: S3Requester;
  /** The full S3 key (driver prefix included). */
  objectKey: string;
  /** The driver's key, as reported in results and messages. */
  key: string;
  /** Configured part size; grown as `part-size.ts` decides. */
  partSize: number;
  /** Parts uploaded at once. */
  queueSize: number;
  /** Send S3 additional checksums (SHA-256) with every part. */
  sendChecksums: boolean;
  observer: StorageObserver;
}

/**
 * Uploads `body` to S3 the way lib-storage's `Upload` does: `readParts` cuts it into fixed-size
 * parts and `queueSize` uploaders pull from it, so memory stays at about
 * (queueSize + 2) x partSize whatever the body's size (the parts being sent, the one being
 * filled, and one just handed out). A body that ends within the first part goes
 * in a single PutObject.
 *
 * Each part is retried on its own (see `S3Requester`); the buffers are kept until their part is
 * stored, so a retry re-sends the same bytes. On any failure or abort the other uploaders are
 * cancelled and awaited, then the multipart upload is aborted, so no part is left stored.
 *
 * `options.onUploadStarted` is called with the upload id right after CreateMultipartUpload; if it
 * throws, the upload is aborted and the put fails.
 */
export async function uploadObject(target: UploadTarget, body: Readable, options: PutOptions): Promise<PutResult> {
  const label = `s3: put ${target.key}`;
  const declaredSize = options.size;
  const fixedPartSize = declaredSize === undefined ? undefined : partSizeForKnownSize(declaredSize, target.partSize);
  const partSizeOf = (partNumber: number) => fixedPartSize ?? partSizeForPart(partNumber, target.partSize);
  const wholeHash = createHash('sha256');

  // Cancelling this stops the body, every uploader and every backoff at once.
  const cancel = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, cancel.signal]) : cancel.signal;
  const parts = readParts(body, { partSizeOf, wholeHash, declaredSize, label, signal });

  let first = await nextPart(parts, target.key, options.signal);
  if (!first || first.data.length < partSizeOf(1)) {
    const data = first?.data ?? Buffer.alloc(0);
    await target.requester.send(
      'put',
      target.key,
      new PutObjectCommand({
        Bucket: target.requester.bucket,
        Key: target.objectKey,
        Body: data,
        ContentLength: data.length,
        ...(target.sendChecksums ? { ChecksumSHA256: hexToBase64(wholeHash.copy().digest('hex')) } : {}),
      }),
      options.signal,
    );
    target.observer.uploaded(data.length);
    options.onProgress?.({ loaded: data.length, total: declaredSize });
    return { key: target.key, size: data.length, sha256: wholeHash.digest('hex') };
  }

  const created = await target.requester.send<CreateMultipartUploadCommandOutput>(
    'create_upload',
    target.key,
    new CreateMultipartUploadCommand({
      Bucket: target.requester.bucket,
      Key: target.objectKey,
      ...(target.sendChecksums ? { ChecksumAlgorithm: 'SHA256' as const } : {}),
    }),
    options.signal,
  );
  const uploadId = created.UploadId;
  if (!uploadId) throw new SnapworkerError(`${label}: CreateMultipartUpload returned no upload id`);

  const completed: CompletedPart[] = [];
  const recorded: PartInfo[] = [];
  let loaded = 0;
  let failure: unknown;
  const fail = (err: unknown) => {
    failure ??= err;
    cancel.abort(err);
  };

  const uploadPart = async (part: BodyPart) => {
    const response = await target.requester.send<UploadPartCommandOutput>(
      'upload_part',
      `${target.key} part ${part.partNumber}`,
      new UploadPartCommand({
        Bucket: target.requester.bucket,
        Key: target.objectKey,
        UploadId: uploadId,
        PartNumber: part.partNumber,
        Body: part.data,
        ContentLength: part.data.length,
        ...(target.sendChecksums ? { ChecksumSHA256: hexToBase64(part.sha256) } : {}),
      }),
      signal,
    );
    completed.push({
      PartNumber: part.partNumber,
      ETag: response.ETag,
      ...(target.sendChecksums ? { ChecksumSHA256: response.ChecksumSHA256 ?? hexToBase64(part.sha256) } : {}),
    });
    recorded.push({ partNumber: part.partNumber, size: part.data.length, sha256: part.sha256 });
    loaded += part.data.length;
    target.observer.uploaded(part.data.length);
    options.onProgress?.({ loaded, total: declaredSize });
  };

  // All uploaders pull from one generator; async generators serialise next() calls.
  const source = prepend({ item: first }, parts);
  first = undefined; // the generator owns it now; holding it here would pin a part for the whole upload
  const uploader = async () => {
    try {
      for await (const part of source) {
        if (failure !== undefined) return;
        await uploadPart(part);
      }
    } catch (err) {
      fail(err);
    }
  };

  try {
    await options.onUploadStarted?.(uploadId);
    await Promise.all(Array.from({ length: target.queueSize }, uploader));
    if (failure === undefined) {
      await completeUpload(target, uploadId, completed, loaded, options.signal);
    }
  } catch (err) {
    fail(err);
  }

  if (failure !== undefined) {
    const reason = options.signal?.aborted ? new AbortedError(`${label}: aborted`, { cause: options.signal.reason }) : failure;
    throw await abortAfterFailure(target, uploadId, s3Error('put', target.key, reason));
  }
  recorded.sort((a, b) => a.partNumber - b.partNumber);
  return { key: target.key, size: loaded, sha256: wholeHash.digest('hex'), parts: recorded };
}

/**
 * Aborts a multipart upload, retried like any request. A missing upload (already completed or
 * aborted) counts as done.
 */
export async function abortMultipartUpload(requester: S3Requester, objectKey: string, key: string, uploadId: string, signal?: AbortSignal): Promise<void> {
  try {
    await requester.send('abort_upload', key, new AbortMultipartUploadCommand({ Bucket: requester.bucket, Key: objectKey, UploadId: uploadId }), signal);
  } catch (err) {
    if (!isNoSuchUpload(err)) throw err;
  }
}

async function completeUpload(target: UploadTarget, uploadId: string, parts: CompletedPart[], size: number, signal?: AbortSignal): Promise<void> {
  const sorted = [...parts].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
  const command = new CompleteMultipartUploadCommand({
    Bucket: target.requester.bucket,
    Key: target.objectKey,
    UploadId: uploadId,
    MultipartUpload: { Parts: sorted },
  });
  let attempts = 0;
  await target.requester.attempt(
    'complete_upload',
    target.key,
    async (attemptSignal) => {
      attempts++;
      try {
        await target.requester.client.send(command, { abortSignal: attemptSignal });
      } catch (err) {
        // An earlier attempt may have completed the upload with its answer lost on the way back.
        if (attempts > 1 && isNoSuchUpload(err) && (await storedSize(target, attemptSignal)) === size) return;
        throw err;
      }
    },
    signal,
  );
}

async function storedSize(target: UploadTarget, signal?: AbortSignal): Promise<number | undefined> {
  const head = (await target.requester.client
    .send(new HeadObjectCommand({ Bucket: target.requester.bucket, Key: target.objectKey }), { abortSignal: signal })
    .catch(() => undefined)) as HeadObjectCommandOutput | undefined;
  return head?.ContentLength;
}

/**
 * Aborts the upload after a failure; returns the error to throw (noting a failed abort too).
 * A failed abort is best effort (the bucket's lifecycle rule is the backstop, docs/storage.md):
 * the failure keeps its class, so whether the job is retried depends on the failure alone.
 */
async function abortAfterFailure(target: UploadTarget, uploadId: string, failure: Error): Promise<Error> {
  try {
    // Not the caller's signal: it may be the reason we are here, and the abort must still happen.
    await abortMultipartUpload(target.requester, target.objectKey, target.key, uploadId);
  } catch (abortErr) {
    failure.message = `${failure.message}; aborting upload ${uploadId} also failed: ${errorMessage(abortErr)}`;
  }
  return failure;
}

async function nextPart(parts: AsyncGenerator<BodyPart>, key: string, signal?: AbortSignal): Promise<BodyPart | undefined> {
  try {
    const result = await parts.next();
    return result.done ? undefined : result.value;
  } catch (err) {
    if (signal?.aborted) throw new AbortedError(`s3: put ${key}: aborted`, { cause: signal.reason });
    throw s3Error('put', key, err);
  }
}

/** Yields `head.item`, then `rest`; lets go of the head once it is handed out. */
async function* prepend<T>(head: { item?: T }, rest: AsyncGenerator<T>): AsyncGenerator<T> {
  const item = head.item;
  head.item = undefined;
  if (item !== undefined) yield item;
  yield* rest;
}

function isNoSuchUpload(err: unknown): boolean {
  const cause = err instanceof Error && err.cause ? err.cause : err;
  return (cause as { name?: string })?.name === 'NoSuchUpload' || (cause as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 404;
}

function hexToBase64(hex: string): string {
  return Buffer.from(hex, 'hex').toString('base64');
}
