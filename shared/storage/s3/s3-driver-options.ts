import { InvalidInputError } from '../../errors.js';
import { DEFAULT_RETRY_POLICY } from '../retry.js';
import type { StorageObserver } from '../storage-driver.js';
import { MAX_PART_SIZE, MIN_PART_SIZE } from './part-size.js';

/** How the client computes and checks S3 additional checksums. */
export type S3ChecksumMode = 'WHEN_SUPPORTED' | 'WHEN_REQUIRED';

/**
 * Options of `S3Driver`. Credentials are deliberately not among them: they come from the AWS
 * SDK's default chain only (environment, shared files, web identity for Kubernetes service
 * accounts), never from job data or URIs.
 */
export interface S3DriverOptions {
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing `/`. Default `''`. */
  prefix?: string;
  /** Endpoint URL for S3-compatible stores (MinIO, Ceph, R2, s3rver). Default: AWS. */
  endpoint?: string;
  /** Default: `AWS_REGION`, then `AWS_DEFAULT_REGION`, then `us-east-1`. */
  region?: string;
  /** Address buckets as `endpoint/bucket` instead of `bucket.endpoint`. Default false. */
  forcePathStyle?: boolean;
  /**
   * `WHEN_SUPPORTED` (default) sends a SHA-256 additional checksum with every part and single PUT
   * and lets the SDK validate response checksums. `WHEN_REQUIRED` sends none and is needed for
   * endpoints that mishandle them: s3rver 3.7.1 stores aws-chunked framing as object bytes.
   */
  checksumMode?: S3ChecksumMode;
  /** Bytes per upload part and per download range. Default 16 MiB; 5 MiB to 5 GiB. */
  partSize?: number;
  /** Parts uploaded, or ranges downloaded, at once. Default 4; 1 to 64. */
  queueSize?: number;
  /** Attempts per request (part, range, head, …), the first included. Default 8. */
  maxAttempts?: number;
  /** Upper bound of the first retry backoff, doubling per attempt (full jitter). Default 200 ms. */
  retryBaseDelayMs?: number;
  /** Cap of one retry backoff. Default 20 s. */
  retryMaxDelayMs?: number;
  /** A request or body with no bytes moving for this long is abandoned and retried. Default 30 s. */
  stallTimeoutMs?: number;
  /** Time allowed to open a connection. Default 10 s. */
  connectTimeoutMs?: number;
  /** Receives request outcomes, retries and byte counts for metrics. */
  observer?: StorageObserver;
}

export type ResolvedS3DriverOptions = Required<Omit<S3DriverOptions, 'endpoint' | 'observer'>> &
  Pick<S3DriverOptions, 'endpoint' | 'observer'>;

const MiB = 1024 * 1024;

export const S3_DRIVER_DEFAULTS = {
  prefix: '',
  forcePathStyle: false,
  checksumMode: 'WHEN_SUPPORTED' as S3ChecksumMode,
  partSize: 16 * MiB,
  queueSize: 4,
  maxAttempts: DEFAULT_RETRY_POLICY.maxAttempts,
  retryBaseDelayMs: DEFAULT_RETRY_POLICY.baseDelayMs,
  retryMaxDelayMs: DEFAULT_RETRY_POLICY.maxDelayMs,
  stallTimeoutMs: 30_000,
  connectTimeoutMs: 10_000,
};

/** Merges defaults and validates; throws `InvalidInputError` naming the bad option. */
export function resolveS3DriverOptions(options: S3DriverOptions): ResolvedS3DriverOptions {
  const defined = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  const resolved: ResolvedS3DriverOptions = {
    ...S3_DRIVER_DEFAULTS,
    region: process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1',
    ...(defined as S3DriverOptions & { bucket: string }),
  };
  resolved.prefix = resolved.prefix.replace(/^\/+|\/+$/g, '');

  const bad = (option: string, why: string): never => {
    throw new InvalidInputError(`s3: option ${option}: ${why}`);
  };
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(resolved.bucket ?? '')) bad('bucket', `${JSON.stringify(resolved.bucket)} is not a valid bucket name`);
  if (resolved.prefix.split('/').some((s) => s === '..' || s === '.' || (s === '' && resolved.prefix !== ''))) {
    bad('prefix', `${JSON.stringify(options.prefix)} has empty, "." or ".." segments`);
  }
  if (resolved.endpoint !== undefined && !/^https?:\/\/[^/]/.test(resolved.endpoint)) bad('endpoint', `${JSON.stringify(resolved.endpoint)} is not an http(s) URL`);
  if (resolved.checksumMode !== 'WHEN_SUPPORTED' && resolved.checksumMode !== 'WHEN_REQUIRED') {
    bad('checksumMode', `must be WHEN_SUPPORTED or WHEN_REQUIRED, got ${JSON.stringify(resolved.checksumMode)}`);
  }
  const integer = (option: keyof typeof S3_DRIVER_DEFAULTS, min: number, max: number) => {
    const value = resolved[option] as number;
    if (!Number.isSafeInteger(value) || value < min || value > max) bad(option, `must be an integer from ${min} to ${max}, got ${value}`);
  };
  integer('partSize', MIN_PART_SIZE, MAX_PART_SIZE);
  integer('queueSize', 1, 64);
  integer('maxAttempts', 1, 100);
  integer('retryBaseDelayMs', 0, 3_600_000);
  integer('retryMaxDelayMs', 0, 3_600_000);
  integer('stallTimeoutMs', 1, 3_600_000);
  integer('connectTimeoutMs', 1, 3_600_000);
  return resolved;
}
