import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { CANCEL_KEY_TTL_SECONDS, cancelChannel, cancelKey } from '../../jobs/cancel-channel.js';
import type { SnapworkerClient } from '../../jobs/client.js';
import type { WorkerConfig } from '../../shared/config.js';
import { NotFoundError, SnapworkerError } from '../../shared/errors.js';
import { buildJobEvent, type JobEvent } from '../../shared/events/job-events.js';
import type { JobKind } from '../../shared/job-kind.js';
import { closeQueue, connectQueue } from './queue-connection.js';
import { InterruptedError } from './exit-codes.js';
import type { CliOptions } from './flags.js';

/** How long `job cancel` waits for a running job to stop after asking its worker. */
const CANCEL_WAIT_MS = 15_000;

/** States in which a job has not started: cancelling it means removing it. */
const NOT_STARTED = new Set(['waiting', 'delayed', 'prioritized', 'waiting-children', 'paused']);

/**
 * `snapworker job status <id>`: state, attempts, progress, and the result or failure.
 * @throws NotFoundError when the queue has no such job (exit 1).
 */
export async function runJobStatus(jobId: string, options: Pick<CliOptions, 'json'>, config: WorkerConfig): Promise<number> {
  const client = await connectQueue(config);
  try {
    const job = await findJob(client, jobId, config);
    const state = await job.getState();
    const status = {
      jobId,
      kind: job.name,
      state,
      attemptsMade: job.attemptsMade,
      attempts: job.opts.attempts ?? 1,
      progress: job.progress,
      ...(state === 'completed' ? { result: job.returnvalue } : {}),
      ...(state === 'failed' ? { failedReason: job.failedReason } : {}),
    };
    if (options.json) process.stdout.write(JSON.stringify(status, null, 2) + '\n');
    else {
      let line = `job ${jobId} (${job.name}): ${describeState(state, job.attemptsMade, status.attempts)}`;
      if (state === 'failed' || (NOT_STARTED.has(state) && job.attemptsMade > 0)) line += `: ${job.failedReason}`;
      if (state === 'completed') line += `: ${describeResult(job.returnvalue)}`;
      process.stdout.write(line + '\n');
    }
    return 0;
  } finally {
    await closeQueue(client);
  }
}

/**
 * `snapworker job cancel <id>`: removes a job that has not started; asks the worker running an
 * active one to abort it (a cancel key, then the queue's cancel channel, see cancel-channel.ts)
 * and waits until it has stopped.
 * @throws NotFoundError for an unknown job; SnapworkerError when the job already ended, when no
 *   worker listens, or when it has not stopped within 15 s.
 */
export async function runJobCancel(jobId: string, options: Pick<CliOptions, 'json'>, config: WorkerConfig): Promise<number> {
  const client = await connectQueue(config);
  const report = (outcome: string, text: string) => {
    process.stdout.write(options.json ? JSON.stringify({ jobId, outcome }) + '\n' : text + '\n');
    return 0;
  };
  try {
    const job = await findJob(client, jobId, config);
    let state = await job.getState();
    if (NOT_STARTED.has(state)) {
      try {
        await job.remove();
        return report('removed', `removed job ${jobId} (${job.name}), which had not started`);
      } catch {
        // Taken by a worker in the meantime: cancel it as a running job.
        state = await job.getState();
      }
    }
    if (state === 'completed' || state === 'failed') throw new SnapworkerError(`job ${jobId}: already ${state}; nothing to cancel`);

    // BullMQ types its client narrowly; it is an ioredis client (or cluster).
    const redis = (await client.queue.client) as unknown as Pick<Redis, 'publish' | 'set'>;
    await redis.set(cancelKey(config.prefix, config.queueName, jobId), '1', 'EX', CANCEL_KEY_TTL_SECONDS);
    const listeners = await redis.publish(cancelChannel(config.prefix, config.queueName), jobId);
    if (listeners === 0) {
      throw new SnapworkerError(`job ${jobId}: no worker of queue ${config.queueName} is listening now; the job fails as cancelled when a worker takes it up again`);
    }
    const deadline = Date.now() + CANCEL_WAIT_MS;
    while (Date.now() < deadline) {
      const now = await job.getState();
      // A replicator completes only when stopped (jobs/results.ts); older ones failed as cancelled.
      if (now === 'failed' || (now === 'completed' && job.name === 'replicate')) return report('cancelled', `cancelled job ${jobId} (${job.name})`);
      if (now === 'completed') throw new SnapworkerError(`job ${jobId}: completed before the cancellation reached it`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new SnapworkerError(`job ${jobId}: asked its worker to cancel it, but it is still ${await job.getState()} after ${CANCEL_WAIT_MS / 1000}s`);
  } finally {
    await closeQueue(client);
  }
}

/**
 * The stored end of a job as the event `watch` would have shown, or undefined while it runs:
 * lets `watch` and `--wait` answer at once for a job that already ended.
 */
export async function endedJobEvent(client: SnapworkerClient, jobId: string): Promise<JobEvent | undefined> {
  const job = await client.queue.getJob(jobId);
  if (!job) return undefined;
  const state = await job.getState();
  const ref = { jobId, kind: job.name as JobKind };
  if (state === 'completed') return buildJobEvent(ref, 'completed', new Date(job.finishedOn ?? Date.now()), job.returnvalue);
  if (state === 'failed') return buildJobEvent(ref, 'failed', new Date(job.finishedOn ?? Date.now()), job.failedReason);
  return undefined;
}

/**
 * A job's state in words: BullMQ's `prioritized` or `waiting-children` mean "waiting" to a user,
 * and a job waiting again after a failed attempt is a retry, not a job that never ran.
 */
function describeState(state: string, attemptsMade: number, attempts: number): string {
  if (NOT_STARTED.has(state)) {
    const why = state === 'delayed' ? 'delayed' : 'waiting for a worker';
    return attemptsMade === 0 ? `${why}, not started` : `${why} to retry, attempt ${attemptsMade} of ${attempts} failed`;
  }
  return `${state}, attempt ${state === 'active' ? attemptsMade + 1 : attemptsMade} of ${attempts}`;
}

/** How long Ctrl-C waits for the queue to say where the job is before saying it does not know. */
const STATE_ON_INTERRUPT_MS = 3_000;

/**
 * What to say when the user stops following a queued job (Ctrl-C during `--wait` or `watch`):
 * where the job is now, read from the queue, so a job no worker has taken is not called running.
 * Never throws: when the queue does not answer in time the line says the state is unknown.
 */
export async function stoppedFollowing(client: SnapworkerClient, jobId: string): Promise<InterruptedError> {
  const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), STATE_ON_INTERRUPT_MS).unref());
  const job = await Promise.race([client.queue.getJob(jobId).catch(() => undefined), timeout]);
  const state = job ? await Promise.race([job.getState().catch(() => undefined), timeout]) : undefined;
  const cancel = `"snapworker job cancel ${jobId}"`;
  if (state !== undefined && NOT_STARTED.has(state)) {
    const why = state === 'delayed' ? 'delayed' : 'waiting for a worker';
    return new InterruptedError(`job ${jobId} has not started (${why}); it stays queued: ${cancel} removes it`);
  }
  switch (state) {
    case 'active':
      return new InterruptedError(`job ${jobId} is still running; ${cancel} stops it`);
    case 'completed':
      return new InterruptedError(`job ${jobId} completed; "snapworker job status ${jobId}" shows its result`);
    case 'failed':
      return new InterruptedError(`job ${jobId} failed: ${job!.failedReason}`);
    default:
      return new InterruptedError(`stopped following job ${jobId}; its state is unknown now ("snapworker job status ${jobId}" shows it)`);
  }
}

async function findJob(client: SnapworkerClient, jobId: string, config: WorkerConfig): Promise<Job> {
  const job = await client.queue.getJob(jobId);
  if (!job) throw new NotFoundError(`job ${jobId}: not in queue ${config.queueName} (unknown, or removed after it ended)`);
  return job;
}

function describeResult(result: unknown): string {
  if (result !== null && typeof result === 'object' && 'id' in result) return `snapshot ${String(result.id)}`;
  if (result !== null && typeof result === 'object' && 'snapshotId' in result) return `snapshot ${String(result.snapshotId)}`;
  return JSON.stringify(result);
}
