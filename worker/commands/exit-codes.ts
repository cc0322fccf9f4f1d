import type { JobResultByKind } from '../../jobs/results.js';
import { AbortedError, InvalidInputError, RepositoryMissingError, UnsafeEntryError, UnsafePathError } from '../../shared/errors.js';
import type { JobKind } from '../../shared/job-kind.js';

/** The command line's exit codes: restic's where they fit (README "Exit codes"). */
export const EXIT_CODES = {
  ok: { code: 0, meaning: 'ok' },
  failed: { code: 1, meaning: 'failed' },
  badInput: { code: 2, meaning: 'bad input (arguments, configuration, a refused target)' },
  incomplete: { code: 3, meaning: 'snapshot completed but some entries were skipped' },
  noRepository: { code: 10, meaning: 'repository does not exist' },
  interrupted: { code: 130, meaning: 'interrupted' },
} as const;

/** Ctrl-C (or SIGTERM) stopped a command: exit 130. */
export class InterruptedError extends AbortedError {
  constructor(message = 'interrupted') {
    super(message);
    this.name = 'InterruptedError';
  }
}

/**
 * The exit code for a command that threw `err`. The same failure maps to the same code whether
 * the job ran in this process (`--local`) or on a worker (`--wait`): a worker's failure arrives
 * as its error class name (see `failureFromJob`).
 */
export function exitCodeForError(err: unknown): number {
  if (err instanceof InterruptedError) return EXIT_CODES.interrupted.code;
  if (err instanceof RepositoryMissingError) return EXIT_CODES.noRepository.code;
  if (err instanceof UnsafeEntryError) return EXIT_CODES.failed.code; // a damaged snapshot, not the caller's input
  if (err instanceof InvalidInputError || err instanceof UnsafePathError) return EXIT_CODES.badInput.code;
  return EXIT_CODES.failed.code;
}

/**
 * The exit code for a job that completed. A snapshot that had to skip entries it could not keep
 * (its record names them) completes with 3, like restic's "incomplete snapshot"; a check that found
 * problems with 1, like restic's check.
 */
export function exitCodeForResult<K extends JobKind>(kind: K, result: JobResultByKind[K]): number {
  // restic's check exits 1 when the repository holds errors; the job itself completed.
  if (kind === 'check') return (result as JobResultByKind['check']).ok ? EXIT_CODES.ok.code : EXIT_CODES.failed.code;
  return kind === 'snapshot' && snapshotSkippedEntries(result as JobResultByKind['snapshot']) ? EXIT_CODES.incomplete.code : EXIT_CODES.ok.code;
}

/** Whether a snapshot record says it left out data it should hold (`incomplete`, see notices.ts). */
function snapshotSkippedEntries(record: JobResultByKind['snapshot']): boolean {
  return record.incomplete === true;
}
