import type { Cluster, Redis } from 'ioredis';
import { CANCEL_KEY_TTL_SECONDS, cancelChannel, cancelKey } from '../jobs/cancel-channel.js';

/**
 * What `snapworker job cancel` asked of this queue, as this worker knows it (cancel-channel.ts):
 * the requests heard on the cancel channel, and the cancel keys in Redis for what it may have
 * missed. Checking a key is a round trip per attempt, and it is needed only for a job that was
 * added before this listener was surely hearing the channel: a request comes after the job was
 * added, and one published while the listener was subscribed was heard. BullMQ numbers the jobs
 * it names from a counter, so after each (re)subscription the listener reads the counter once:
 * a job numbered above it was added while listening, and is answered from what was heard. Jobs
 * with ids of their own, older jobs, jobs checked while the connection is down, and every job on
 * a Redis Cluster (whose subscriber may move to another node without a word, losing messages
 * meanwhile) are checked against their key.
 */
export class CancelRequests {
  /** Job ids whose cancellation was heard, with when (kept as long as the cancel key lives). */
  private readonly heard = new Map<string, number>();
  /** BullMQ's job counter when the subscription was last seen up; undefined while it is not. */
  private listeningFromId: number | undefined;
  /** Bumped on every break, so a counter read across a break is not taken. */
  private connection = 0;

  /**
   * @param listener a connection of its own (it enters subscriber mode)
   * @param onRequest told of each request heard, to abort the job if it runs here
   * @param jobCounter reads BullMQ's job id counter (`<prefix>:<queue>:id`) on another connection
   */
  constructor(
    private readonly listener: Redis | Cluster,
    private readonly prefix: string,
    private readonly queueName: string,
    onRequest: (jobId: string) => void,
    private readonly jobCounter: () => Promise<number>,
  ) {
    listener.on('message', (_channel: string, jobId: string) => {
      this.remember(jobId);
      onRequest(jobId);
    });
    if (!listener.isCluster) {
      // ioredis emits 'ready' first and subscribes again right after, in the same tick.
      listener.on('ready', () => setImmediate(() => void this.markListening()));
      listener.on('close', () => {
        this.connection += 1;
        this.listeningFromId = undefined;
      });
    }
  }

  /** Subscribes to the queue's cancel channel. */
  async start(): Promise<void> {
    await this.listener.subscribe(cancelChannel(this.prefix, this.queueName));
    if (!this.listener.isCluster) await this.markListening();
  }

  /**
   * True when `job cancel` asked for this job. Call it after BullMQ tracks the job (in the
   * processor): a request heard later aborts the job through `onRequest`.
   * @param exists the cancel key check, on the worker's own connection
   */
  async requested(jobId: string, exists: (key: string) => Promise<number>): Promise<boolean> {
    if (this.heard.has(jobId)) return true;
    if (this.listeningFromId !== undefined && /^[1-9]\d*$/.test(jobId) && Number(jobId) > this.listeningFromId) return false;
    return (await exists(cancelKey(this.prefix, this.queueName, jobId))) > 0;
  }

  /**
   * Once the subscription is up: a PING on the listener answers after its SUBSCRIBE was served,
   * then the counter is read, so every job numbered above it was added while listening.
   */
  private async markListening(): Promise<void> {
    const connection = this.connection;
    try {
      await this.listener.ping();
      const counter = await this.jobCounter();
      if (connection === this.connection) this.listeningFromId = counter;
    } catch {
      // Not known to be listening: keys are checked until the next 'ready'.
    }
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
