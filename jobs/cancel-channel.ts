/**
 * The Redis pub/sub channel a queue's workers listen on for cancellation requests: the message
 * is a job id, and the worker running that job aborts it through its AbortSignal. (BullMQ's own
 * `Worker.cancelJob` only reaches jobs of the worker it is called on.) The channel carries the
 * queue's key prefix, so a `{hash-tag}` prefix keeps it with the queue on Redis Cluster.
 */
export function cancelChannel(prefix: string, queueName: string): string {
  return `${prefix}:${queueName}:snapworker:cancel`;
}

/**
 * The key a cancellation leaves behind (for a day), set before the request is published: a worker
 * checks it when an attempt starts, so a request that no running worker heard (the job between
 * two attempts, or its worker gone) still stops the job when it is taken up again.
 */
export function cancelKey(prefix: string, queueName: string, jobId: string): string {
  return `${prefix}:${queueName}:snapworker:cancelled:${jobId}`;
}

/** How long a cancellation key lives, in seconds. */
export const CANCEL_KEY_TTL_SECONDS = 24 * 3600;

/** The reason a cancelled job's AbortSignal carries, and its failure message. */
export const CANCELLED_REASON = 'cancelled by request';
