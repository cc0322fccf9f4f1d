import { AbortedError } from '../errors.js';

/** How often and how patiently a transient failure is retried. */
export interface RetryPolicy {
  /** Attempts in total, the first one included. Default 8. */
  maxAttempts: number;
  /** Upper bound of the first backoff; doubles per attempt. Default 200 ms. */
  baseDelayMs: number;
  /** Cap of any one backoff. Default 20 s. */
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 8, baseDelayMs: 200, maxDelayMs: 20_000 };

export interface RetryOptions {
  policy: RetryPolicy;
  /** True when another attempt could succeed; anything else is thrown at once. */
  isTransient(err: unknown): boolean;
  signal?: AbortSignal;
  /** Called before each backoff, for metrics and logs. */
  onRetry?(err: unknown, attempt: number, delayMs: number): void;
  /** Source of randomness for the jitter; tests pass a seeded one. */
  random?: () => number;
}

/**
 * Runs `operation` until it succeeds, a non-transient error occurs, or `policy.maxAttempts` is
 * used up, sleeping with exponential backoff and full jitter between attempts (AWS architecture
 * blog, "Exponential Backoff And Jitter": full jitter spreads retrying clients best).
 *
 * Rejects with the last error of the operation, or with `AbortedError` when `signal` fires while
 * waiting. `attempt` passed to the operation starts at 1.
 */
export async function withRetry<T>(operation: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const { policy, signal } = options;
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (err) {
      if (signal?.aborted || attempt >= policy.maxAttempts || !options.isTransient(err)) throw err;
      const delayMs = backoffDelay(attempt, policy, options.random);
      options.onRetry?.(err, attempt, delayMs);
      await sleep(delayMs, signal);
    }
  }
}

/** Full-jitter backoff before attempt `attempt + 1`: uniform in [0, min(max, base * 2^(attempt-1))]. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(random() * ceiling);
}

/** Resolves after `ms`, or rejects with `AbortedError` as soon as `signal` fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError('aborted', { cause: signal.reason }));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError('aborted', { cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
