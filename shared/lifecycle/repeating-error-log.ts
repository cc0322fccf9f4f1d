import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';

/**
 * Logs an error that repeats (a lost Redis reconnecting every second, a sampler failing every
 * tick) once per change of state instead of once per occurrence: the first occurrence at `warn`
 * with its message, a different message as a new state (with how often the previous one
 * repeated), and the recovery at `info` with the count. No stack traces: a connection refused is
 * a state, not a bug.
 */
export class RepeatingErrorLog {
  private current: string | undefined;
  private count = 0;
  private since = 0;

  /**
   * @param logger where the lines go
   * @param what the thing that fails, as it should read in a log line (`redis connection`)
   */
  constructor(
    private readonly logger: Logger,
    private readonly what: string,
  ) {}

  /** An occurrence: logged only when its message differs from the previous occurrence's. */
  error(err: unknown): void {
    const message = errorMessage(err);
    if (message === this.current) {
      this.count += 1;
      return;
    }
    const previous = this.current === undefined ? {} : { previous: this.current, previousCount: this.count };
    this.current = message;
    this.count = 1;
    this.since = Date.now();
    this.logger.warn({ err: message, ...previous }, `${this.what}: ${message} (logged once until it changes)`);
  }

  /** The failing state ended: logs how many occurrences it had and for how long. */
  recovered(): void {
    if (this.current === undefined) return;
    this.logger.info(
      { previous: this.current, previousCount: this.count, seconds: Math.round((Date.now() - this.since) / 1000) },
      `${this.what}: recovered after ${this.count} error(s)`,
    );
    this.current = undefined;
    this.count = 0;
  }
}
