import { AbortedError, NotFoundError, SnapworkerError } from '../../errors.js';

/** An S3 SDK error as far as this driver looks at it. */
interface S3ErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

const TRANSIENT_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestThrottled',
  'TooManyRequestsException',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'ServiceUnavailable',
  'TimeoutError',
  'StallError',
  'ShortReadError',
]);

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);

/**
 * True for failures another attempt of the same request may not have: 5xx and 429 answers,
 * throttling, broken or timed-out connections, stalled or short bodies. 4xx answers (missing
 * object, bad request, denied) and aborts are not transient.
 */
export function isTransientS3Error(err: unknown): boolean {
  if (err instanceof AbortedError || (err as Error)?.name === 'AbortError') return false;
  const e = (err ?? {}) as S3ErrorShape;
  const status = e.$metadata?.httpStatusCode;
  // 501 Not Implemented is a permanent answer; every other 5xx and 429 may pass.
  if (status !== undefined && ((status >= 500 && status !== 501) || status === 429)) return true;
  if (e.name && TRANSIENT_NAMES.has(e.name)) return true;
  if (e.code && TRANSIENT_CODES.has(e.code)) return true;
  if (e.$retryable) return true;
  // Node's http client reports a connection closed before any answer with this text only.
  return /socket hang up|aborted|premature close/i.test(e.message ?? '') && status === undefined;
}

/** True for S3's ways of saying an object (or upload) is not there. */
export function isS3NotFound(err: unknown): boolean {
  const e = (err ?? {}) as S3ErrorShape;
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/**
 * The error the driver throws for a failed request: `NotFoundError` for a missing object,
 * `AbortedError` for a cancelled one, errors of ours unchanged, anything else as
 * `SnapworkerError` `s3: <operation> <key>: <message>` with the SDK error as cause.
 */
export function s3Error(operation: string, key: string, err: unknown, detail = ''): Error {
  if (err instanceof SnapworkerError) return err;
  const e = (err ?? {}) as S3ErrorShape;
  const reason = [e.name && e.name !== 'Error' ? e.name : undefined, e.message].filter(Boolean).join(': ') || String(err);
  const message = `s3: ${operation} ${key}: ${reason}${detail}`;
  if (isS3NotFound(err)) return new NotFoundError(message, { cause: err });
  if (e.name === 'AbortError') return new AbortedError(message, { cause: err });
  return new SnapworkerError(message, { cause: err });
}

/** Thrown by a download whose body stopped delivering bytes for too long. */
export class StallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StallError';
  }
}

/** Thrown when a response body ends before its announced length. */
export class ShortReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShortReadError';
  }
}
