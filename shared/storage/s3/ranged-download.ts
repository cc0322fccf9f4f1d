import { GetObjectCommand, HeadObjectCommand, type GetObjectCommandOutput, type HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { addAbortSignal, Readable } from 'node:stream';

import { IntegrityError, SnapworkerError } from '../../errors.js';
import type { GetOptions, StorageObserver } from '../storage-driver.js';
import { ShortReadError, StallError } from './s3-errors.js';
import type { S3Requester } from './s3-requester.js';

export interface DownloadSource {
  requester: S3Requester;
  /** The full S3 key (driver prefix included). */
  objectKey: string;
  /** The driver's key, for messages. */
  key: string;
  /** Bytes per ranged GET. */
  partSize: number;
  /** Ranged GETs in flight at once. */
  queueSize: number;
  /** A range whose body delivers no byte for this long is abandoned and retried. */
  stallTimeoutMs: number;
  observer: StorageObserver;
}

interface ByteSpan {
  start: number;
  /** Inclusive. */
  end: number;
}

/**
 * Opens the object (or `options.range` of it) as one stream fed by parallel ranged GETs:
 * `queueSize` ranges of `partSize` bytes are fetched at once, each retried on its own, and
 * handed out in order. Memory stays at about (queueSize + 1) x partSize.
 *
 * HeadObject first gives the size and ETag (and `NotFoundError` before any stream exists); every
 * range is then pinned to that ETag (`If-Match`, and the answer's ETag is compared too), so an
 * object replaced mid-download fails the stream instead of mixing old and new bytes. Ranges are
 * always `bytes=a-b` with both ends: s3rver answers suffix ranges wrongly. A range past the end of
 * the object yields an empty stream.
 */
export async function openRangedDownload(source: DownloadSource, options: GetOptions): Promise<Readable> {
  const { requester, objectKey, key } = source;
  const head = await requester.send<HeadObjectCommandOutput>(
    'head',
    key,
    new HeadObjectCommand({ Bucket: requester.bucket, Key: objectKey }),
    options.signal,
  );
  const size = head.ContentLength ?? 0;
  const etag = head.ETag;
  const start = options.range?.start ?? 0;
  const end = Math.min(options.range?.end ?? Infinity, size - 1);
  const spans = splitSpan({ start, end }, source.partSize);
  const total = Math.max(0, end - start + 1);

  const cancel = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, cancel.signal]) : cancel.signal;

  async function* inOrder(): AsyncGenerator<Buffer> {
    const inFlight: Array<Promise<Buffer>> = [];
    let nextSpan = 0;
    let loaded = 0;
    const launch = () => {
      const fetching = fetchSpan(source, spans[nextSpan++]!, etag, signal);
      fetching.catch(() => {}); // awaited in order below; this only silences early rejections
      inFlight.push(fetching);
    };
    try {
      while (inFlight.length < source.queueSize && nextSpan < spans.length) launch();
      while (inFlight.length > 0) {
        const bytes = await inFlight.shift()!;
        if (nextSpan < spans.length) launch();
        loaded += bytes.length;
        options.onProgress?.({ loaded, total });
        yield bytes;
      }
    } finally {
      cancel.abort();
    }
  }

  // highWaterMark 1 byte: the stream pulls the next range only once the consumer took the last.
  const stream = Readable.from(inOrder(), { objectMode: false, highWaterMark: 1 });
  stream.once('close', () => cancel.abort());
  if (options.signal) addAbortSignal(options.signal, stream);
  return stream;
}

/** Cuts an inclusive span into `partSize` pieces; empty when `end < start`. */
export function splitSpan(span: ByteSpan, partSize: number): ByteSpan[] {
  const spans: ByteSpan[] = [];
  for (let start = span.start; start <= span.end; start += partSize) {
    spans.push({ start, end: Math.min(span.end, start + partSize - 1) });
  }
  return spans;
}

/** One ranged GET, body read whole, retried as a unit on transient failures and stalls. */
function fetchSpan(source: DownloadSource, span: ByteSpan, etag: string | undefined, signal: AbortSignal): Promise<Buffer> {
  const { requester, objectKey, key } = source;
  return requester.attempt(
    'get',
    `${key} bytes ${span.start}-${span.end}`,
    async () => {
      const response = await requester.client.send(
        new GetObjectCommand({ Bucket: requester.bucket, Key: objectKey, Range: `bytes=${span.start}-${span.end}`, IfMatch: etag }),
        { abortSignal: signal },
      );
      if (etag !== undefined && response.ETag !== undefined && response.ETag !== etag) {
        (response.Body as Readable | undefined)?.destroy();
        throw new SnapworkerError(`s3: get ${key}: the object changed during the download (ETag ${etag} became ${response.ETag})`);
      }
      return readBody(source, response, span);
    },
    signal,
  );
}

/**
 * Reads a range's body into one buffer, failing on stalls and on a short body. A server that sends
 * more than the range asked for (s3rver ignores the end of `bytes=0-0`) is cut off at the range's
 * end, once the answer is known to start where the range does.
 */
async function readBody(source: DownloadSource, response: GetObjectCommandOutput, span: ByteSpan): Promise<Buffer> {
  const expected = span.end - span.start + 1;
  const body = response.Body as Readable;
  const answeredStart = response.ContentRange ? Number(/^bytes (\d+)-/.exec(response.ContentRange)?.[1]) : 0;
  if (answeredStart !== span.start) {
    body.destroy();
    throw new IntegrityError(`s3: get ${source.key}: asked for bytes ${span.start}-${span.end}, got ${response.ContentRange ?? 'the whole object'}`);
  }
  const buffer = Buffer.allocUnsafe(expected);
  let offset = 0;
  let watchdog: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(
      () => body.destroy(new StallError(`s3: get ${source.key}: no bytes for ${source.stallTimeoutMs} ms`)),
      source.stallTimeoutMs,
    );
  };
  try {
    arm();
    for await (const chunk of body as AsyncIterable<Buffer>) {
      arm();
      const take = Math.min(chunk.length, expected - offset);
      chunk.copy(buffer, offset, 0, take);
      offset += take;
      source.observer.downloaded(take);
      if (offset === expected) break;
    }
  } finally {
    clearTimeout(watchdog);
    body.destroy();
  }
  if (offset !== expected) {
    throw new ShortReadError(`s3: get ${source.key}: range ${span.start}-${span.end} ended after ${offset} of ${expected} bytes`);
  }
  return buffer;
}
