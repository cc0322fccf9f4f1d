import { DelayedError, UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { CANCELLED_REASON } from '../jobs/cancel-channel.js';
import { closeConnection, createRedisClient, toConnection } from '../jobs/redis-connection.js';
import { parseJob } from '../jobs/validate.js';
import type { ScheduleBook, ScheduleRun } from '../jobs/schedules.js';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import type { WorkerConfig } from '../shared/config.js';
import { errorMessage, isRetryable, throwIfAborted } from '../shared/errors.js';
import type { JobEventSink, JobRef } from '../shared/events/job-events.js';
import { snapshotIdForJob } from '../shared/ids.js';
import { BOOKKEEPING_KEY } from '../jobs/job-options.js';
import type { JobKind } from '../shared/job-kind.js';
import type { Logger } from '../shared/logging.js';
import type { WorkerMetrics } from '../shared/metrics/metrics.js';
import { RepeatingErrorLog } from '../shared/lifecycle/repeating-error-log.js';
import { settledWithin } from '../shared/lifecycle/settle-within.js';
import { ProgressTracker } from '../shared/progress.js';
import { redactUrl } from '../shared/redact-url.js';
import { runJob, type JobRun, type JobRuntime } from './job-runner.js';
import { CancelRequests } from './cancel-requests.js';
import { encodeUploadToken } from '../shared/catalog/upload-token.js';
import { replicationStatusOf } from '../shared/kinds/sqlite/replication/replication-status.js';
import { replicaNameOf, stoppedResult } from '../shared/kinds/sqlite/replication/replicate-job.js';

/** Reason given to running jobs' AbortSignals when the shutdown grace runs out. */
const SHUTDOWN = 'worker shutting down';

/**
 * After the grace, how long aborted jobs get to go back to the queue (one Redis call each) and
 * how long the connections get to close before they are dropped. With Redis unreachable neither
 * ever finishes on its own, and a worker that does not exit on SIGTERM is a zombie.
 */
const RETURN_JOBS_MS = 5000;

/** How long a replicate job that found this worker's replicator slots full waits before it is offered again. */
const SLOTS_FULL_DELAY_MS = 2000;
const FORCE_CLOSE_MS = 2000;

/**
 * Bookkeeping the worker keeps inside the job's data under this key (stripped before the data is
 * validated): the repository's token for an upload of an attempt in flight (an S3 multipart
 * upload), so that the next attempt after a crash discards it instead of leaving parts stranded.
 */
export { BOOKKEEPING_KEY };
interface Bookkeeping {
  /** `token` from `Repository`'s `onUploadToken`; `key` + `uploadId` in jobs a version before tokens left. */
  pendingUpload?: PendingUpload;
  /** Further uploads of the same attempt (an archive's entry index beside the archive). */
  morePendingUploads?: PendingUpload[];
}
type PendingUpload = { repo: string | undefined; token?: string; key?: string; uploadId?: string };

export interface QueueWorkerDeps {
  runtime: JobRuntime;
  logger: Logger;
  metrics?: WorkerMetrics;
  events: JobEventSink;
  /** Progress publish interval, default 1000 ms. */
  progressIntervalMs?: number;
  /** Schedules on this queue: where scheduled runs record their outcome. */
  schedules?: ScheduleBook;
}

/**
 * A BullMQ worker running snapworker jobs. Invalid data fails at once without retries; integrity
 * failures too. On `close(grace)` it stops taking jobs, lets running ones finish for `grace`
 * seconds, then aborts them and puts them back on the queue for another worker.
 */
export class QueueWorker {
  readonly worker: Worker;
  /** Subscribed to the queue's cancel channel: `snapworker job cancel` reaches running jobs. */
  private readonly cancelRequests: CancelRequests;
  /** A cluster connection is an instance BullMQ never closes: closed here after the worker. */
  private readonly connection: ReturnType<typeof toConnection>;
  private shuttingDown = false;
  /** Jobs in `process` right now: with none, shutdown has nothing to give a grace to. */
  private active = 0;
  /** Of those, replicate jobs (they run in slots of their own, see the constructor). */
  private activeReplicators = 0;

  constructor(
    private readonly config: WorkerConfig,
    private readonly deps: QueueWorkerDeps,
  ) {
    this.connection = toConnection(config.redisUrl);
    // Replicate jobs never end, so they get slots of their own: each running replicator raises
    // BullMQ's concurrency by one (see `process`), so the other jobs always have `concurrency`
    // slots. One BullMQ Worker per sort is not possible: a Worker takes the next job of the queue
    // whatever its name, and job names share one queue (priorities, cancel, `job status`).
    this.worker = new Worker(config.queueName, (job, token, signal) => this.process(job, token, signal), {
      connection: this.connection,
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
    const cancelListener = createRedisClient(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: null });
    cancelListener.on('error', (err) => errors.error(err));
    this.cancelRequests = new CancelRequests(
      cancelListener,
      config.prefix,
      config.queueName,
      (jobId) => {
        // Every worker of the queue hears the request; only the one running the job acts on it.
        if (this.worker.cancelJob(jobId, CANCELLED_REASON)) deps.logger.info({ jobId }, 'job cancel requested; aborting it');
      },
      async () => Number((await (await this.redis<'get'>()).get(this.worker.keys.id)) ?? 0),
    );
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
    await this.cancelRequests.start();
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
      this.cancelRequests.disconnect();
      await settledWithin(closeConnection(this.connection), FORCE_CLOSE_MS / 2);
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
    const replicator = job.name === 'replicate';
    if (replicator && this.activeReplicators >= this.config.maxReplicators && token) {
      // Back to the queue for another worker (or for this one once a replicator slot is free).
      await job.moveToDelayed(Date.now() + SLOTS_FULL_DELAY_MS, token);
      throw new DelayedError();
    }
    this.active += 1;
    if (replicator) {
      // The replicator came in through an ordinary slot; one more slot gives it back to them.
      this.activeReplicators += 1;
      this.worker.concurrency = this.config.concurrency + this.activeReplicators;
    }
    try {
      return await this.runAttempt(job, token, signal);
    } finally {
      this.active -= 1;
      if (replicator) {
        this.activeReplicators -= 1;
        this.worker.concurrency = this.config.concurrency + this.activeReplicators;
      }
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
      const schedule = (parsed.data as { schedule?: { name: string } }).schedule?.name;
      if (schedule) ref.schedule = schedule;
    } catch (err) {
      const reason = publicReason(err);
      log.warn({ err: reason }, 'invalid job');
      events.failed(ref, reason);
      throw unrecoverable(err);
    }

    if (await this.cancelRequested(job)) {
      if (parsed.kind === 'replicate') {
        // A stop is how a replicator ends: completed, never a failure (jobs/results.ts).
        log.info('replicator stopped before this attempt');
        const data = parsed.data as { source: string; name?: string };
        const result = stoppedResult(data.name ?? replicaNameOf(decodeURIComponent(new URL(data.source).pathname)));
        events.completed(ref, result);
        return result;
      }
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
      const { repo } = parsed.data as { repo?: string };
      if (parsed.kind === 'snapshot' && job.attemptsStarted > 1) await this.discardLeftovers(job, repo, snapshotId, abort);
      const result = await runJob(
        {
          kind: parsed.kind,
          data: parsed.data as never,
          signal: abort,
          progress: tracker,
          snapshotId,
          job: { id: job.id!, queue: this.config.queueName },
          onUploadToken: (token) => this.recordUpload(job, { repo, token }),
          onNotice: (notice) => {
            const what = notice.kind === 'unmatched' ? `${notice.path} matched nothing` : `entry not kept exactly: ${notice.kind} ${notice.path}`;
            log.warn({ notice: notice.kind, path: notice.path, reason: notice.reason }, what);
            events.warning(ref, notice);
          },
          ...(parsed.kind === 'replicate' ? { replication: this.replicationHooks(job, ref, log) } : {}),
        },
        runtime,
      );
      tracker.flush();
      logUnnamedNotices(log, result);
      metrics?.jobFinished(parsed.kind, 'completed', (Date.now() - started) / 1000);
      await this.recordScheduleRun(job, parsed.data, { result: 'succeeded', snapshotId: (result as { id?: string }).id });
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
        await this.recordScheduleRun(job, parsed.data, { result: 'failed', error: CANCELLED_REASON });
        events.failed(ref, CANCELLED_REASON);
        throw new UnrecoverableError(CANCELLED_REASON);
      }
      const reason = publicReason(err);
      await this.recordScheduleRun(job, parsed.data, { result: 'failed', error: reason });
      events.failed(ref, reason);
      if (!isRetryable(err)) throw unrecoverable(err);
      // BullMQ stores the message as the failed reason: no URL in it may carry a secret.
      if (err instanceof Error) err.message = reason;
      throw err;
    }
  }

  /**
   * A replicate job's status goes to the job's progress (`replicate ls`), its changes to events.
   * Once its first sync succeeded, the job's stall count is reset: a replicator runs for months,
   * and each takeover after a worker died counts as a stall, so without the reset BullMQ would
   * fail it at its second takeover ever (`maxStalledCount` 1) instead of at a crash loop.
   */
  private replicationHooks(job: Job, ref: JobRef, log: Logger): NonNullable<JobRun<'replicate'>['replication']> {
    let healthy = false;
    return {
      previous: replicationStatusOf(job.progress),
      onStatus: (status) => {
        job.updateProgress({ ...status }).catch((err) => log.debug({ err: errorMessage(err) }, 'replication status update failed'));
        if (healthy || status.state !== 'replicating') return;
        healthy = true;
        void this.worker.client
          .then((client) => (client as unknown as Pick<Redis, 'hset'>).hset(`${job.queueQualifiedName}:${job.id}`, 'stc', 0))
          .catch((err) => log.debug({ err: errorMessage(err) }, 'could not reset the stall count'));
      },
      onChange: (change) => this.deps.events.replication(ref, change),
    };
  }

  /**
   * The outcome of a scheduled run, for `schedule ls` and the schedule metrics. Best effort: a
   * Redis hiccup here must not turn a stored snapshot into a failed job.
   */
  private async recordScheduleRun(job: Job, data: unknown, outcome: Pick<ScheduleRun, 'result' | 'snapshotId' | 'error'>): Promise<void> {
    const name = (data as { schedule?: { name?: string } }).schedule?.name;
    if (!name || !this.deps.schedules) return;
    try {
      await this.deps.schedules.recordRun(name, { at: new Date().toISOString(), jobId: job.id!, ...outcome });
    } catch (err) {
      this.deps.logger.warn({ err: errorMessage(err), schedule: name }, 'could not record the schedule run');
    }
  }

  /** True when `snapworker job cancel` asked for this job (heard, or its key left; see CancelRequests). */
  private cancelRequested(job: Job): Promise<boolean> {
    return this.cancelRequests.requested(job.id!, async (key) => (await this.redis<'exists'>()).exists(key));
  }

  /** The worker's own connection: BullMQ types its client narrowly; it is an ioredis client (or cluster). */
  private async redis<K extends keyof Redis>(): Promise<Pick<Redis, K>> {
    return (await this.worker.client) as unknown as Pick<Redis, K>;
  }

  /** Remembers an upload in flight (an S3 multipart upload, a temp file) on the job so a later attempt can clean it up. */
  private async recordUpload(job: Job, upload: PendingUpload): Promise<void> {
    const recorded = (job.data as Record<string, unknown>)[BOOKKEEPING_KEY] as Bookkeeping | undefined;
    const bookkeeping: Bookkeeping = recorded?.pendingUpload
      ? { pendingUpload: recorded.pendingUpload, morePendingUploads: [...(recorded.morePendingUploads ?? []), upload] }
      : { pendingUpload: upload };
    await job.updateData({ ...(job.data as object), [BOOKKEEPING_KEY]: bookkeeping });
  }

  /**
   * Before a snapshot's second or later attempt (a retry, or a takeover after a worker died): the
   * temp files an attempt that died left in the snapshot's folder are removed (a filesystem
   * repository's puts record none on the job, see FsDriver.put). Best effort, as for uploads
   * below: a failure is logged, and prune's sweep removes them later.
   */
  private async discardLeftovers(job: Job, repo: string | undefined, snapshotId: string, signal: AbortSignal): Promise<void> {
    try {
      await this.deps.runtime.repository(repo).discardSnapshotLeftovers(snapshotId, { signal });
    } catch (err) {
      throwIfAborted(signal);
      this.deps.logger.warn({ jobId: job.id, err: errorMessage(err) }, 'could not remove what an earlier attempt left in the snapshot folder; going on (prune removes it)');
    }
  }

  /**
   * A previous attempt died mid-upload: abort its multipart upload before starting again. Best
   * effort: a server or IAM policy without AbortMultipartUpload (405 MethodNotAllowed, 403
   * AccessDenied, 501 NotImplemented) would otherwise fail every retry of a job that can succeed.
   * A failure is logged, counted in `snapworker_cleanup_failures_total{kind="multipart_upload"}`
   * and left to the bucket's lifecycle rule (docs/storage.md); the bookkeeping is dropped either
   * way so the next attempt does not try again. Only the job's own abort stops the job here.
   */
  private async abortOrphanUpload(job: Job, bookkeeping: Bookkeeping | undefined, signal: AbortSignal): Promise<void> {
    if (!bookkeeping?.pendingUpload) return;
    const log = this.deps.logger.child({ jobId: job.id });
    for (const pending of [bookkeeping.pendingUpload, ...(bookkeeping.morePendingUploads ?? [])]) {
      try {
        const token = pending.token ?? encodeUploadToken({ key: String(pending.key), uploadId: String(pending.uploadId) });
        await this.deps.runtime.repository(pending.repo).discardUpload(token, { signal });
        log.info('aborted the upload a crashed attempt left open');
      } catch (err) {
        throwIfAborted(signal);
        this.deps.metrics?.cleanupFailed('multipart_upload');
        log.warn(
          { err: errorMessage(err) },
          'could not abort the upload a crashed attempt left open; going on (a bucket lifecycle rule AbortIncompleteMultipartUpload removes it)',
        );
      }
    }
    const { [BOOKKEEPING_KEY]: _dropped, ...data } = job.data as Record<string, unknown>;
    await job.updateData(data);
  }
}

/** An error's message as it may go into events, the job's failed reason and logs: URLs redacted. */
function publicReason(err: unknown): string {
  return redactUrl(errorMessage(err));
}

/** After the named notices went to the log one by one: one line with the count of the rest. */
function logUnnamedNotices(log: Logger, result: unknown): void {
  const notices = (result as Partial<SnapshotRecord> | undefined)?.notices;
  if (!notices?.truncated) return;
  const total = Object.values(notices.counts).reduce((sum, n) => sum + (n ?? 0), 0);
  log.warn({ counts: notices.counts }, `${total - notices.first.length} more entries not kept exactly (not named; counts per kind in the record)`);
}

/**
 * Fails a job for good with `err`'s message, keeping `err`'s stack trace: BullMQ stores the trace
 * with the job, and its first line (`InvalidInputError: ...`) is how a client following the job
 * learns what kind of failure it was (the command line's exit code, see `failureOf`).
 */
function unrecoverable(err: unknown): UnrecoverableError {
  const wrapped = new UnrecoverableError(publicReason(err));
  if (err instanceof Error && err.stack) wrapped.stack = redactUrl(err.stack);
  return wrapped;
}
