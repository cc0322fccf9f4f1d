import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { CANCELLED_REASON, cancelChannel, cancelKey } from '../jobs/cancel-channel.js';
import { toConnection } from '../jobs/client.js';
import { parseJob } from '../jobs/validate.js';
import type { Compression } from '../shared/archive/manifest.js';
import type { WorkerConfig } from '../shared/config.js';
import { errorMessage, isRetryable } from '../shared/errors.js';
import type { JobEventSink, JobRef } from '../shared/events/job-events.js';
import { snapshotIdForJob } from '../shared/ids.js';
import type { JobKind } from '../shared/job-kind.js';
import type { Logger } from '../shared/logging.js';
import type { WorkerMetrics } from '../shared/metrics/metrics.js';
import { RepeatingErrorLog } from '../shared/lifecycle/repeating-error-log.js';
import { settledWithin } from '../shared/lifecycle/settle-within.js';
import { ProgressTracker } from '../shared/progress.js';
import { redactUrl } from '../shared/redact-url.js';
import { runJob, type JobRuntime } from './job-runner.js';

/** Reason given to running jobs' AbortSignals when the shutdown grace runs out. */
const SHUTDOWN = 'worker shutting down';

/**
 * After the grace, how long aborted jobs get to go back to the queue (one Redis call each) and
 * how long the connections get to close before they are dropped. With Redis unreachable neither
 * ever finishes on its own, and a worker that does not exit on SIGTERM is a zombie.
 */
const RETURN_JOBS_MS = 5000;
const FORCE_CLOSE_MS = 2000;

/**
 * Bookkeeping the worker keeps inside the job's data under this key (stripped before the data is
 * validated): the S3 multipart upload of an attempt in flight, so that the next attempt after a
 * crash aborts it instead of leaving parts stranded.
 */
export const BOOKKEEPING_KEY = '_snapworker';
interface Bookkeeping {
  pendingUpload?: { repo: string | undefined; key: string; uploadId: string };
}

export interface QueueWorkerDeps {
  runtime: JobRuntime;
  logger: Logger;
  metrics?: WorkerMetrics;
  events: JobEventSink;
  /** Progress publish interval, default 1000 ms. */
  progressIntervalMs?: number;
}

/**
 * A BullMQ worker running snapworker jobs. Invalid data fails at once without retries; integrity
 * failures too. On `close(grace)` it stops taking jobs, lets running ones finish for `grace`
 * seconds, then aborts them and puts them back on the queue for another worker.
 */
export class QueueWorker {
  readonly worker: Worker;
  /** Subscribed to the queue's cancel channel: `snapworker job cancel` reaches running jobs. */
  private readonly cancelListener: Redis;
  private shuttingDown = false;
  /** Jobs in `process` right now: with none, shutdown has nothing to give a grace to. */
  private active = 0;

  constructor(
    private readonly config: WorkerConfig,
    private readonly deps: QueueWorkerDeps,
  ) {
    this.worker = new Worker(config.queueName, (job, token, signal) => this.process(job, token, signal), {
      connection: toConnection(config.redisUrl),
      prefix: config.prefix,
      concurrency: config.concurrency,
      lockDuration: config.lockDurationMs,
      stalledInterval: config.stalledIntervalMs,
      autorun: false,
    });
    // ioredis retries a lost connection every second or so, and BullMQ reports each failure:
    // log the state, not every retry.
    const errors = new RepeatingErrorLog(deps.logger, `queue ${config.queueName} on ${redactUrl(config.redisUrl)}`);
    this.worker.on('error', (err) => errors.error(err));
    this.cancelListener = new Redis({ ...(toConnection(config.redisUrl) as RedisOptions), lazyConnect: true, maxRetriesPerRequest: null });
    this.cancelListener.on('error', (err) => errors.error(err));
    this.cancelListener.on('message', (_channel: string, jobId: string) => {
      // Every worker of the queue hears the request; only the one running the job acts on it.
      if (this.worker.cancelJob(jobId, CANCELLED_REASON)) deps.logger.info({ jobId }, 'job cancel requested; aborting it');
    });
    void this.worker.client.then(
      (client) => client.on('ready', () => errors.recovered()),
      () => {},
    );
    this.worker.on('lockRenewalFailed', (jobIds) => {
      // Another worker may take these jobs over once their locks expire; abort ours so two
      // workers never write the same snapshot or target at once.
      deps.logger.warn({ jobIds }, 'job lock renewal failed; aborting the jobs');
      for (const id of jobIds) this.worker.cancelJob(id, 'lock lost');
    });
    this.worker.on('failed', (job, err) => deps.logger.warn({ jobId: job?.id, kind: job?.name, err: errorMessage(err) }, 'job failed'));
  }

  /** Starts taking jobs; resolves once the worker is connected. */
  async start(): Promise<void> {
    await this.cancelListener.subscribe(cancelChannel(this.config.prefix, this.config.queueName));
    void this.worker.run().catch((err) => this.deps.logger.error({ err }, 'worker stopped'));
    await this.worker.waitUntilReady();
  }

  /** True while the worker is taking jobs and Redis answers. */
  async ready(): Promise<boolean> {
    if (this.shuttingDown || !this.worker.isRunning()) return false;
    try {
      // ioredis reports 'ready' only while connected; a lost Redis shows as 'reconnecting'.
      return (await this.worker.client).status === 'ready';
    } catch {
      return false;
    }
  }

  /**
   * Graceful stop, bounded: no new jobs; running ones get `graceSeconds` to finish, then are
   * aborted and moved back to waiting (not failed), so another worker picks them up. When BullMQ
   * still has not closed 5 s later (2 s when no job ran), typically because Redis is gone, the
   * connections are dropped. Resolves at most `graceSeconds` + 6 s after the call; never throws.
   */
  async close(graceSeconds: number): Promise<void> {
    this.shuttingDown = true;
    try {
      await this.closeWorker(graceSeconds);
    } finally {
      this.cancelListener.disconnect();
    }
  }

  private async closeWorker(graceSeconds: number): Promise<void> {
    // BullMQ remembers the first close(): a later close(true) returns the same promise, so the
    // forced step below drops the connections itself instead.
    const closing = this.worker.close();
    if (this.active > 0) {
      if (await settledWithin(closing, graceSeconds * 1000)) return;
      this.deps.logger.warn({ graceSeconds }, 'shutdown grace over; returning running jobs to the queue');
      this.worker.cancelAllJobs(SHUTDOWN);
      if (await settledWithin(closing, RETURN_JOBS_MS)) return;
    } else if (await settledWithin(closing, FORCE_CLOSE_MS)) {
      return;
    }
    // Jobs still held here go back to the queue when their locks expire (stalled-job check).
    this.deps.logger.warn('closing the queue worker did not finish (is Redis reachable?); dropping its connections');
    await settledWithin(
      Promise.allSettled([this.worker.disconnect(), this.worker.client.then((client) => client.disconnect())]),
      FORCE_CLOSE_MS / 2,
    );
  }

  private async process(job: Job, token: string | undefined, signal: AbortSignal | undefined): Promise<unknown> {
    this.active += 1;
    try {
      return await this.runAttempt(job, token, signal);
    } finally {
      this.active -= 1;
    }
  }

  private async runAttempt(job: Job, token: string | undefined, signal: AbortSignal | undefined): Promise<unknown> {
    const started = Date.now();
    const abort = signal ?? new AbortController().signal;
    const { [BOOKKEEPING_KEY]: bookkeeping, ...data } = (job.data ?? {}) as Record<string, unknown>;
    // Events name the job as it was enqueued, even when the name is not a known kind.
    const ref: JobRef = { jobId: job.id!, kind: job.name as JobKind };
    const log = this.deps.logger.child({ jobId: job.id, kind: job.name, attempt: job.attemptsMade + 1 });
    const { metrics, events, runtime } = this.deps;

    let parsed: ReturnType<typeof parseJob>;
    try {
      parsed = parseJob(job.name, data);
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'invalid job');
      events.failed(ref, errorMessage(err));
      throw unrecoverable(err);
    }

    if (await this.cancelRequested(job.id!)) {
      log.info('job cancelled before this attempt');
      events.failed(ref, CANCELLED_REASON);
      throw new UnrecoverableError(CANCELLED_REASON);
    }
    metrics?.jobStarted(parsed.kind);
    events.started(ref);
    log.info('job started');
    const tracker = new ProgressTracker((report) => {
      job.updateProgress({ ...report }).catch((err) => log.debug({ err: errorMessage(err) }, 'progress update failed'));
      events.progress(ref, report);
    }, this.deps.progressIntervalMs);

    try {
      await this.abortOrphanUpload(job, bookkeeping as Bookkeeping | undefined, abort);
      // Every attempt of this job writes the same snapshot id, so a retry replaces its own leftovers.
      const snapshotId = snapshotIdForJob(job.timestamp, `${this.config.prefix}:${this.config.queueName}:${job.id}`);
      const { repo, compression } = parsed.data as { repo?: string; compression?: Compression };
      const result = await runJob(
        {
          kind: parsed.kind,
          data: parsed.data as never,
          signal: abort,
          progress: tracker,
          snapshotId,
          job: { id: job.id!, queue: this.config.queueName },
          onUploadStarted: (uploadId) =>
            this.recordUpload(job, { repo, key: runtime.repository(repo).archiveKey(snapshotId, compression ?? 'zstd'), uploadId }),
        },
        runtime,
      );
      tracker.flush();
      metrics?.jobFinished(parsed.kind, 'completed', (Date.now() - started) / 1000);
      events.completed(ref, result);
      log.info({ seconds: (Date.now() - started) / 1000 }, 'job completed');
      return result;
    } catch (err) {
      metrics?.jobFinished(parsed.kind, 'failed', (Date.now() - started) / 1000);
      if (this.shuttingDown && abort.aborted && abort.reason === SHUTDOWN && token) {
        log.info('job returned to the queue for another worker');
        await job.moveToWait(token);
        throw new WaitingError();
      }
      if (abort.aborted && abort.reason === CANCELLED_REASON) {
        log.info('job cancelled');
        events.failed(ref, CANCELLED_REASON);
        throw new UnrecoverableError(CANCELLED_REASON);
      }
      events.failed(ref, errorMessage(err));
      if (!isRetryable(err)) throw unrecoverable(err);
      throw err;
    }
  }

  /** True when `snapworker job cancel` left its key for this job (see cancel-channel.ts). */
  private async cancelRequested(jobId: string): Promise<boolean> {
    // BullMQ types its client narrowly; it is an ioredis client (or cluster).
    const redis = (await this.worker.client) as unknown as Pick<Redis, 'exists'>;
    return (await redis.exists(cancelKey(this.config.prefix, this.config.queueName, jobId))) > 0;
  }

  /** Remembers an S3 multipart upload on the job so a later attempt can clean it up. */
  private async recordUpload(job: Job, pendingUpload: NonNullable<Bookkeeping['pendingUpload']>): Promise<void> {
    const bookkeeping: Bookkeeping = { pendingUpload };
    await job.updateData({ ...(job.data as object), [BOOKKEEPING_KEY]: bookkeeping });
  }

  /** A previous attempt died mid-upload: abort its multipart upload before starting again. */
  private async abortOrphanUpload(job: Job, bookkeeping: Bookkeeping | undefined, signal: AbortSignal): Promise<void> {
    const pending = bookkeeping?.pendingUpload;
    if (!pending) return;
    const driver = this.deps.runtime.repository(pending.repo).driver;
    await driver.abortUpload?.(pending.key, pending.uploadId, { signal });
    this.deps.logger.info({ jobId: job.id, key: pending.key }, 'aborted the upload a crashed attempt left open');
    const { [BOOKKEEPING_KEY]: _dropped, ...data } = job.data as Record<string, unknown>;
    await job.updateData(data);
  }
}

/**
 * Fails a job for good with `err`'s message, keeping `err`'s stack trace: BullMQ stores the trace
 * with the job, and its first line (`InvalidInputError: ...`) is how a client following the job
 * learns what kind of failure it was (the command line's exit code, see `failureOf`).
 */
function unrecoverable(err: unknown): UnrecoverableError {
  const wrapped = new UnrecoverableError(errorMessage(err));
  if (err instanceof Error && err.stack) wrapped.stack = err.stack;
  return wrapped;
}
