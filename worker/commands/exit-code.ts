import type { JobResultByKind } from '../../jobs/results.js';
import type { JobKind } from '../../shared/job-kind.js';

/** restic's exit code for "the snapshot completed, but some entries could not be read". */
export const EXIT_INCOMPLETE = 3;

/**
 * The exit code of a job that completed: 0, or EXIT_INCOMPLETE for a snapshot whose record says
 * it left out data (`incomplete: true`). The same in `--local` and `--wait`, since both decide
 * from the result.
 */
export function exitCodeForResult<K extends JobKind>(kind: K, result: JobResultByKind[K]): number {
  if (kind === 'snapshot' && (result as JobResultByKind['snapshot']).incomplete === true) return EXIT_INCOMPLETE;
  return 0;
}
