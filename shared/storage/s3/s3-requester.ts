import type { S3Client } from '@aws-sdk/client-s3';

import type { StorageObserver } from '../storage-driver.js';
import { withRetry, type RetryPolicy } from '../retry.js';
import { isTransientS3Error, s3Error } from './s3-errors.js';

/**
 * Any command of `@aws-sdk/client-s3`. Its output type is named by the caller (`send<HeadObjectCommandOutput>`):
 * the SDK's overloaded, config-parameterised `send` does not let a wrapper infer it.
 */
type S3Command = { readonly input: object };

/**
 * Every S3 request of the driver goes through here: one place that retries transient failures
 * with backoff, counts attempts and retries for metrics, and turns failures into the driver's
 * errors. The SDK's own retries are off (`maxAttempts: 1` on the client) so that attempts are
 * neither multiplied nor hidden, and no stream body is ever re-read by the SDK.
 */
export class S3Requester {
  constructor(
    readonly client: S3Client,
    readonly bucket: string,
    private readonly retryPolicy: RetryPolicy,
    private readonly observer: StorageObserver,
  ) {}

  /** Sends `command`, retried on transient errors. Rejects with `s3Error(operation, key, …)`. */
  send<Output = unknown>(operation: string, key: string, command: S3Command, signal?: AbortSignal): Promise<Output> {
    const request = (attemptSignal?: AbortSignal) => this.client.send(command as never, { abortSignal: attemptSignal }) as Promise<Output>;
    return this.attempt(operation, key, request, signal);
  }

  /**
   * Runs `request` (one attempt: a request and, for downloads, reading its body) until it
   * succeeds, fails for good, or the retry policy is used up. `request` gets the caller's signal.
   */
  async attempt<T>(operation: string, key: string, request: (signal?: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    let attempts = 0;
    try {
      return await withRetry(
        async () => {
          attempts++;
          try {
            const result = await request(signal);
            this.observer.request(operation, 'ok');
            return result;
          } catch (err) {
            this.observer.request(operation, 'error');
            throw err;
          }
        },
        {
          policy: this.retryPolicy,
          isTransient: isTransientS3Error,
          signal,
          onRetry: () => this.observer.retry(operation),
        },
      );
    } catch (err) {
      throw s3Error(operation, key, err, attempts > 1 ? ` (after ${attempts} attempts)` : '');
    }
  }
}
