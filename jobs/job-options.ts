import type { JobsOptions } from 'bullmq';

/** Defaults applied to every job this client enqueues. */
export const DEFAULT_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 5000 },
  removeOnComplete: { age: 7 * 24 * 3600, count: 10000 },
  removeOnFail: { age: 30 * 24 * 3600 },
};

/**
 * The one key of job data that is not the producer's: where a worker keeps its bookkeeping
 * between attempts (an upload to discard after a crash). Validation drops it; comparing a stored
 * job's data with what a producer sent leaves it out.
 */
export const BOOKKEEPING_KEY = '_snapworker';
