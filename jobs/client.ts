import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, QueueEvents, type ConnectionOptions, type Job, type JobsOptions } from 'bullmq';
import { InvalidInputError } from '../shared/errors.js';
import type { JobKind } from '../shared/job-kind.js';
import type { ProgressReport } from './progress-report.js';
import type { JobResultByKind } from './results.js';
import { ScheduleBook } from './schedules.js';
import { JOB_PRIORITY, type JobDataByKind, type ScheduleDefinition } from './schemas.js';
import { parseJobData } from './validate.js';
import { checkServerMode, closeConnection, clusterPrefixProblem, toConnection } from './redis-connection.js';
import { Cluster } from 'ioredis';

export { toConnection } from './redis-connection.js';
import { BOOKKEEPING_KEY, DEFAULT_JOB_OPTIONS } from './job-options.js';

export { DEFAULT_JOB_OPTIONS };

export interface SnapworkerClientOptions {
  /**
   * Redis connection: a URL as the workers' `REDIS_URL` (`redis://`, `rediss://`,
   * `redis+cluster://` seed nodes, `redis+sentinel://` Sentinels and master; see
   * `RedisSettings`), ioredis options, or an ioredis `Redis`/`Cluster` instance (which the client
   * uses but never closes). Default `redis://127.0.0.1:6379`.
   */
  connection?: string | ConnectionOptions;
  /** Queue name, default `snapworker`. Must match the workers' `SNAPWORKER_QUEUE`. */
  queueName?: string;
  /** BullMQ key prefix, default `bull`. Must match the workers' `SNAPWORKER_PREFIX`. */
  prefix?: string;
}

export interface EnqueueOptions {
  /**
   * Your own id for the job: enqueueing twice with the same id adds it once (idempotent
   * producers). Must not contain `:`.
   */
  jobId?: string;
  /** Attempts before the job fails, default 3 (bad input never retries). */
  attempts?: number;
  /** Override the kind's default priority (`JOB_PRIORITY`). */
  priority?: number;
}

export interface WaitOptions {
  /** Give up waiting after this long (the job keeps running), default no limit. */
  timeoutMs?: number;
  onProgress?: (report: ProgressReport) => void;
}


/**
 * The producer client other services import: validates job data before it reaches the queue,
 * sets priorities and retries, and follows jobs to their result.
 */
export class SnapworkerClient {
  readonly queue: Queue;
  private events: QueueEvents | undefined;
  private book: ScheduleBook | undefined;
  private readonly connection: ConnectionOptions;
  /** Connections this client made from a URL and closes: a cluster is one instance per user. */
  private readonly owned: ConnectionOptions[] = [];
  private source: string | ConnectionOptions = '';
  /** Resolves once the server has been found to be of the kind the URL names (`checkServerMode`). */
  private serverChecked: Promise<void> | undefined;

  /**
   * @throws InvalidInputError when `connection` is a URL of none of the accepted forms, or names
   * a cluster and the prefix has no hash tag.
   */
  constructor(options: SnapworkerClientOptions = {}) {
    const prefix = options.prefix ?? 'bull';
    this.connection = this.connect(options.connection ?? 'redis://127.0.0.1:6379');
    const problem = this.connection instanceof Cluster ? clusterPrefixProblem(prefix) : undefined;
    if (problem) {
      void closeConnection(this.connection);
      throw new InvalidInputError(`prefix ${JSON.stringify(prefix)}: ${problem}`);
    }
    this.queue = new Queue(options.queueName ?? 'snapworker', { connection: this.connection, prefix });
  }

  /**
   * Validates `data` and adds a job.
   * @throws InvalidInputError naming the field when the data does not match the schema, or
   *   when `options.jobId` is one BullMQ would refuse (see `checkJobId`).
   */
  async enqueue<K extends JobKind>(kind: K, data: JobDataByKind[K], options: EnqueueOptions = {}): Promise<Job> {
    const valid = parseJobData(kind, data);
    if (options.jobId !== undefined) checkJobId(options.jobId);
    await this.checkServer();
    const job = await this.queue.add(kind, valid, {
      ...DEFAULT_JOB_OPTIONS,
      priority: options.priority ?? JOB_PRIORITY[kind],
      ...(options.attempts !== undefined ? { attempts: options.attempts } : {}),
      ...(options.jobId !== undefined ? { jobId: options.jobId } : {}),
    });
    if (options.jobId !== undefined) return this.sameJobOrRefuse(job, kind, valid);
    return job;
  }

  /**
   * With a job id BullMQ adds nothing when the id exists, yet hands back a Job holding the data it
   * was given: a caller would then follow, and report, another job. The stored job is read back;
   * the same kind and data is the idempotent case (that job is returned), anything else is refused.
   * @throws InvalidInputError naming the id and what holds it.
   */
  private async sameJobOrRefuse(added: Job, kind: JobKind, data: unknown): Promise<Job> {
    const stored = await this.queue.getJob(added.id!);
    // Gone already: this very job ran and was removed by its retention between the two calls.
    if (!stored) return added;
    const { [BOOKKEEPING_KEY]: _bookkeeping, ...storedData } = (stored.data ?? {}) as Record<string, unknown>;
    if (stored.name !== kind || canonicalJson(storedData) !== canonicalJson(data)) {
      throw new InvalidInputError(`job id ${added.id}: already taken by a ${stored.name} job with other data; nothing enqueued (use another id)`);
    }
    return stored;
  }

  /**
   * Adds or replaces a schedule: a snapshot job run on `cron` (in `tz`) or `every` interval, its
   * lineage pruned by `retention` after each successful run. Returns the stored definition.
   * @throws InvalidInputError naming the field or the bad cron pattern.
   */
  schedule(definition: ScheduleDefinition): Promise<ScheduleDefinition> {
    return this.schedules.put(definition);
  }

  /** Lists, shows, pauses, resumes, runs and removes schedules on this client's queue. */
  get schedules(): ScheduleBook {
    this.book ??= new ScheduleBook(this.queue);
    return this.book;
  }

  /**
   * Waits for a job to finish and returns its result; reports progress while it runs.
   * @throws Error with the job's failure reason when it failed.
   */
  async waitForResult<K extends JobKind>(job: Job, options: WaitOptions = {}): Promise<JobResultByKind[K]> {
    const events = await this.queueEvents();
    const onProgress = ({ jobId, data }: { jobId: string; data: unknown }) => {
      if (jobId === job.id && typeof data === 'object' && data !== null) options.onProgress?.(data as ProgressReport);
    };
    if (options.onProgress) events.on('progress', onProgress);
    const stopPolling = new AbortController();
    const notified = job.waitUntilFinished(events, options.timeoutMs);
    const polled = this.pollUntilFinished(job.id!, stopPolling.signal);
    // Whichever loses the race must not end as an unobserved rejection.
    notified.catch(() => {});
    polled.catch(() => {});
    try {
      return (await Promise.race([notified, polled])) as JobResultByKind[K];
    } finally {
      stopPolling.abort();
      events.off('progress', onProgress);
    }
  }

  /**
   * The end of a job as its stored state says, checked every few seconds: BullMQ's
   * `waitUntilFinished` checks the state once and then waits for the finish event, which a job
   * that ends while QueueEvents is still starting its first stream read never sends again (seen as
   * a `--wait` that hung on a job failed within milliseconds). Resolves with the return value,
   * rejects with the failure reason; never settles once `signal` fires.
   */
  private async pollUntilFinished(jobId: string, signal: AbortSignal): Promise<unknown> {
    while (!signal.aborted) {
      await sleep(FINISH_POLL_MS, undefined, { signal }).catch(() => {});
      if (signal.aborted) break;
      // One call while the job runs; the job itself is read only once it has ended.
      const state = await this.queue.getJobState(jobId);
      // Failed for good (a failed attempt that will be retried waits or is delayed instead).
      if (state !== 'completed' && state !== 'failed') continue;
      const stored = await this.queue.getJob(jobId);
      if (!stored) continue;
      if (state === 'failed') throw new Error(stored.failedReason);
      return stored.returnvalue;
    }
    return new Promise(() => {});
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled([this.events?.close(), this.queue.close()]);
    await Promise.all(this.owned.map((connection) => closeConnection(connection)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async queueEvents(): Promise<QueueEvents> {
    if (!this.events) {
      // QueueEvents blocks on XREAD: it needs a connection of its own, not the queue's instance.
      this.events = new QueueEvents(this.queue.name, { connection: this.connect(this.source), prefix: this.queue.opts.prefix });
      await this.events.waitUntilReady();
    }
    return this.events;
  }

  /** Only a URL says what kind of server it expects; options and instances are taken as they are. */
  private checkServer(): Promise<void> {
    if (typeof this.source !== 'string') return Promise.resolve();
    const url = this.source;
    this.serverChecked ??= this.queue.client.then((client) => checkServerMode(client, url));
    return this.serverChecked;
  }

  private connect(connection: string | ConnectionOptions): ConnectionOptions {
    this.source = connection;
    const made = toConnection(connection);
    if (made !== connection) this.owned.push(made);
    return made;
  }
}

/**
 * Refuses a custom job id BullMQ would refuse with its own words ("Custom Id cannot contain :"),
 * before anything reaches Redis: BullMQ builds Redis keys from ids with `:` as the separator, and
 * reads an all-digits id as one of its own counters.
 * @throws InvalidInputError naming the id.
 */
export function checkJobId(jobId: string): void {
  if (jobId === '') throw new InvalidInputError('job id is empty');
  if (jobId.includes(':')) throw new InvalidInputError(`job id "${jobId}": must not contain ":" (BullMQ uses it to build Redis keys)`);
  if (String(Number.parseInt(jobId, 10)) === jobId) throw new InvalidInputError(`job id "${jobId}": must not be an integer (BullMQ numbers its own jobs); add a letter`);
}

/** How often `waitForResult` reads a job's state beside waiting for its finish event. */
const FINISH_POLL_MS = 2000;

/** JSON with object keys sorted, so two producers' spellings of the same data compare equal. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}
