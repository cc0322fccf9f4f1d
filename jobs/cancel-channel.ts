/**
 * The Redis pub/sub channel a queue's workers listen on for cancellation requests: the message
 * is a job id, and the worker running that job aborts it through its AbortSignal. (BullMQ's own
 * `Worker.cancelJob` only reaches jobs of the worker it is called on.) The channel carries the
 * queue's key prefix, so a `{hash-tag}` prefix keeps it with the queue on Redis Cluster.
 */
export function cancelChannel(prefix: string, queueName: string): string {
  return `${prefix}:${queueName}:snapworker:cancel`;
}

/** The reason a cancelled job's AbortSignal carries, and its failure message. */
export const CANCELLED_REASON = 'cancelled by request';
