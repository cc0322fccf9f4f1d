/**
 * The small catalogue of errors snapworker raises. Every error names the operation and the
 * object it failed on and carries the underlying `cause`.
 *
 * `retryable` tells the job layer whether another attempt could succeed: bad input and integrity
 * failures never will, so the worker fails those jobs at once (BullMQ `UnrecoverableError`).
 */
export class SnapworkerError extends Error {
  readonly retryable: boolean = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SnapworkerError';
  }
}

/** Job data, a URI, a config value or a CLI argument is wrong. Never retried. */
export class InvalidInputError extends SnapworkerError {
  override readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidInputError';
  }
}

/** An archive or a stored object failed a check (sum, seal, size, structure). Never retried. */
export class IntegrityError extends SnapworkerError {
  override readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IntegrityError';
  }
}

/** A path, an entry or a link would reach outside what the job is allowed to touch. */
export class UnsafePathError extends SnapworkerError {
  override readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnsafePathError';
  }
}

/**
 * An archive entry (its path, link target or type) that would reach outside the restore target:
 * the snapshot is damaged or hostile, not the caller's input, so the command line exits 1
 * ("failed"), not 2 as for a path the caller gave.
 */
export class UnsafeEntryError extends UnsafePathError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnsafeEntryError';
  }
}

/** The one not-found error every storage driver maps its own to. */
export class NotFoundError extends SnapworkerError {
  override readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NotFoundError';
  }
}

/**
 * A disk or a quota is full (`ENOSPC`, `EDQUOT`, SQLite's `SQLITE_FULL`). Not retried: another
 * attempt minutes later fails the same way, after rewriting as much, until an operator frees
 * space; the message names where.
 */
export class NoSpaceError extends SnapworkerError {
  override readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NoSpaceError';
  }
}

/**
 * The repository itself does not exist (never initialized, or a mistyped URI), as opposed to a
 * missing object inside it. Never retried; the command line exits 10 (restic's code).
 */
export class RepositoryMissingError extends NotFoundError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RepositoryMissingError';
  }
}

/** The job's AbortSignal fired (cancellation, shutdown). */
export class AbortedError extends SnapworkerError {
  constructor(message = 'aborted', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AbortedError';
  }
}

/**
 * A job's reads and writes made no progress for the configured stall timeout. Retried: a peer
 * that stopped answering may answer the next attempt.
 */
export class StalledError extends SnapworkerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StalledError';
  }
}

/** True when another attempt of the same operation could succeed. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof SnapworkerError) return err.retryable;
  return true;
}

/** Throws an AbortedError carrying the signal's reason when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    const reason = signal.reason;
    throw reason instanceof Error ? reason : new AbortedError(String(reason ?? 'aborted'));
  }
}

/** The message of any thrown value, for logs and job failure reasons. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * `message` with `subject: ` in front, unless it already begins with `subject` (an error from
 * below that named it: `snapshot X: …`, `snapshot X (key): …`). Every place that names the object
 * of a message from below goes through this, so no line reads `snapshot X: snapshot X: …`.
 */
export function withSubject(subject: string, message: string): string {
  const named = message === subject || message.startsWith(`${subject}:`) || message.startsWith(`${subject} `);
  return named ? message : `${subject}: ${message}`;
}
