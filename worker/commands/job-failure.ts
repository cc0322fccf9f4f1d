import type { Job } from 'bullmq';
import { IntegrityError, InvalidInputError, NotFoundError, RepositoryMissingError, SnapworkerError, UnsafeEntryError, UnsafePathError } from '../../shared/errors.js';

/** Error classes a worker's failure is rebuilt as, by the name its stack trace starts with. */
const BY_NAME: Record<string, new (message: string) => SnapworkerError> = {
  InvalidInputError,
  ConfigError: InvalidInputError,
  UnsafePathError,
  UnsafeEntryError,
  IntegrityError,
  NotFoundError,
  RepositoryMissingError,
};

/**
 * The failure of a queued job as the error class the worker threw, so a command exits with the
 * same code whether the job ran here (`--local`) or on a worker (`--wait`). BullMQ keeps only the
 * message and the stack traces; the worker fails jobs with the original error's stack, whose
 * first line starts with the class name (see QueueWorker).
 */
export function failureOf(job: Job, message: string): SnapworkerError {
  const lastTrace = job.stacktrace?.at(-1) ?? '';
  const name = /^(\w+):/.exec(lastTrace)?.[1];
  const ErrorClass = name !== undefined && Object.hasOwn(BY_NAME, name) ? BY_NAME[name]! : SnapworkerError;
  return new ErrorClass(message);
}
