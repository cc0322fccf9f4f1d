import type { Cluster, Redis } from 'ioredis';
import { CANCEL_KEY_TTL_SECONDS, cancelChannel, cancelKey } from '../jobs/cancel-channel.js';

/**
 * A job added this long after the listener's subscription started is one whose every
 * cancellation the listener heard: more than any clock skew between producers and workers.
 */
const HEARD_MARGIN_MS = 60_000;

/**
 * What `snapworker job cancel` asked of this queue, as this worker knows it (cancel-channel.ts):
 * the requests heard on the cancel channel, and the cancel keys in Redis for what it may have
 * missed. Checking a key is a round trip per attempt; it is needed only for a job that was added
 * before this listener was surely hearing the channel (a request before that went only to the
 * key). So a worker whose subscription has been up since before a job was added answers from what
 * it heard, and asks Redis only for older jobs, after a reconnect, and on a Redis Cluster (whose
 * subscriber may move to another node without a word and lose messages meanwhile).
 */
export class CancelRequests {
  /** Job ids whose cancellation was heard, with when (kept as long as the cancel key lives). */
  private readonly heard = new Map<string, number>();
  /** Since when the subscription has been up without a break; undefined while it is not. */
  private hearingSince: number | undefined;

  /**
   * @param listener a connection of its own (it enters subscriber mode)
   * @param onRequest told of each request heard, to abort the job if it runs here
   */
  constructor(
    private readonly listener: Redis | Cluster,
    private readonly prefix: string,
    private readonly queueName: string,
    onRequest: (jobId: string) => void,
  ) {
    listener.on('message', (_channel: string, jobId: string) => {
      this.remember(jobId);
      onRequest(jobId);
    });
    if (!isCluster(listener)) {
      // ioredis subscribes again on every 'ready'; whatever was published while it was away is lost.
      listener.on('ready', () => (this.hearingSince = Date.now()));
      listener.on('close', () => (this.hearingSince = undefined));
    }
  }

  /** Subscribes to the queue's cancel channel. */
  async start(): Promise<void> {
    await this.listener.subscribe(cancelChannel(this.prefix, this.queueName));
    if (!isCluster(this.listener) && this.listener.status === 'ready') this.hearingSince ??= Date.now();
  }

  /**
   * True when `job cancel` asked for this job. Call it after BullMQ tracks the job (in the
   * processor): a request heard later aborts the job through `onRequest`.
   * @param addedAt the job's `timestamp` (when it was added, the producer's clock)
   * @param exists the cancel key check, on the worker's own connection
   */
  async requested(jobId: string, addedAt: number, exists: (key: string) => Promise<number>): Promise<boolean> {
    if (this.heard.has(jobId)) return true;
    if (this.hearingSince !== undefined && addedAt - HEARD_MARGIN_MS > this.hearingSince) return false;
    return (await exists(cancelKey(this.prefix, this.queueName, jobId))) > 0;
  }

  /** Drops the subscription. */
  disconnect(): void {
    this.listener.disconnect();
  }

  private remember(jobId: string): void {
    const now = Date.now();
    for (const [id, at] of this.heard) {
      if (now - at < CANCEL_KEY_TTL_SECONDS * 1000) break; // oldest first: the rest are younger
      this.heard.delete(id);
    }
    this.heard.delete(jobId);
    this.heard.set(jobId, now);
  }
}

function isCluster(connection: Redis | Cluster): connection is Cluster {
  return (connection as Cluster).isCluster === true;
}
