import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { cancelKey } from '../../jobs/cancel-channel.js';
import type { SnapworkerClient } from '../../jobs/client.js';
import { replicateJobId } from '../../jobs/replicate-job-id.js';
import type { ReplicateJobResult } from '../../jobs/results.js';
import type { ReplicateJobData } from '../../jobs/schemas.js';
import { parseJobData } from '../../jobs/validate.js';
import type { WorkerConfig } from '../../shared/config.js';
import { InvalidInputError, NotFoundError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logging.js';
import { replicaNameOf } from '../../shared/kinds/sqlite/replication/replicate-job.js';
import { lagSeconds, replicationStatusOf, type ReplicationStatus } from '../../shared/kinds/sqlite/replication/replication-status.js';
import type { CliOptions } from './flags.js';
import { runJobCancel } from './job-control.js';
import { runJobCommand } from './job-commands.js';
import { closeQueue, connectQueue } from './queue-connection.js';

/** Job states in which a replicator runs or is about to: enqueueing it again changes nothing. */
const LIVE_STATES = ['active', 'waiting', 'prioritized', 'delayed', 'paused'] as const;

/**
 * `snapworker replicate <sqlite:///abs/db>`: enqueues the database's replicator under its derived
 * job id (`replicateJobId`), or with `--local` runs it here until interrupted. A replicator already
 * live under that id is left alone and reported; one that ended (stopped or failed) is replaced.
 * @throws InvalidInputError for bad flags, or when the replica name is replicated from another file.
 */
export async function runReplicateCommand(uri: string, options: CliOptions, config: WorkerConfig, logger: Logger): Promise<number> {
  const data = replicateJobData(uri, options);
  if (options.local) return runJobCommand('replicate', data, options, config, logger);
  const repo = data.repo ?? config.defaultRepository;
  const jobId = replicateJobId(repo, data.name!);
  const client = await connectQueue(config);
  const report = (outcome: string, text: string) => {
    process.stdout.write(options.json ? JSON.stringify({ jobId, kind: 'replicate', outcome }) + '\n' : text + '\n');
    return 0;
  };
  try {
    const existing = await client.queue.getJob(jobId);
    if (existing) {
      const state = await existing.getState();
      if ((LIVE_STATES as readonly string[]).includes(state)) {
        const running = existing.data as ReplicateJobData;
        if (running.source !== data.source) {
          throw new InvalidInputError(`replicate: replica ${data.name} in repository ${repo} is already replicated from ${running.source} (job ${jobId}); give this database another --name`);
        }
        const status = replicationStatusOf(existing.progress);
        return report('running', `replicator ${jobId} is already ${state}${status ? ` on ${status.host}` : ''}; nothing enqueued`);
      }
      // Stopped or failed: its id is free again. `replicate stop` left a cancel key that would
      // stop the new job at once; it goes first.
      await existing.remove();
    }
    const redis = (await client.queue.client) as unknown as Pick<Redis, 'del'>;
    await redis.del(cancelKey(config.prefix, config.queueName, jobId));
    const job = await client.enqueue('replicate', data, { jobId });
    if (job.id !== jobId) throw new Error(`replicate: the queue gave the job id ${job.id}, not ${jobId}`);
    return report('enqueued', jobId);
  } finally {
    await closeQueue(client);
  }
}

/** The job data the flags give, with the replica name filled in (it names the job). */
function replicateJobData(uri: string, options: CliOptions): ReplicateJobData {
  let path: string;
  try {
    path = decodeURIComponent(new URL(uri).pathname);
  } catch (cause) {
    throw new InvalidInputError(`replicate: "${uri}" is not a sqlite:///abs/path URI`, { cause });
  }
  return parseJobData('replicate', {
    v: 1,
    source: uri,
    repo: options.repo,
    name: options.name ?? replicaNameOf(path),
    interval: options.interval,
    retention: options.retention,
  });
}

/** One line of `replicate ls`. */
export interface ReplicatorListing {
  jobId: string;
  database: string;
  source: string;
  repo: string | undefined;
  /**
   * `starting` or `replicating` on a worker, `waiting` for one; or how it ended: `stopped` (by
   * `replicate stop`) or `failed: <reason>`.
   */
  state: string;
  /** When an ended replicator stopped or failed (ISO 8601). */
  endedAt?: string;
  host?: string;
  generation?: string;
  index?: number;
  offset?: number;
  shippedAt?: string;
  /** When the last successful sync began: every commit before it is in the replica. */
  syncedFrom?: string;
  lagSeconds?: number;
  lastError?: string;
}

/** How long `replicate ls` shows a replicator that ended (without `--all`): a day, long enough to notice why. */
export const ENDED_SHOWN_MS = 24 * 3600_000;

/**
 * `snapworker replicate ls [--all]`: every live replicate job, and those that ended (stopped, or
 * failed: <reason>) in the last day; `--all` shows every ended one the queue still holds (BullMQ
 * keeps a failed job 30 days, a completed one 7). The rows left out are counted under the table,
 * so a failure never vanishes from the listing without a trace.
 */
export async function runReplicateList(options: Pick<CliOptions, 'json' | 'all'>, config: WorkerConfig): Promise<number> {
  const client = await connectQueue(config);
  try {
    const everything = await listReplicators(client);
    const shownSince = Date.now() - ENDED_SHOWN_MS;
    const listings = options.all ? everything : everything.filter((l) => !l.endedAt || Date.parse(l.endedAt) >= shownSince);
    const hidden = everything.length - listings.length;
    if (options.json) {
      process.stdout.write(JSON.stringify(listings, null, 2) + '\n');
      return 0;
    }
    const rows = [['DATABASE', 'STATE', 'HOST', 'GENERATION', 'POSITION', 'LAG', 'ENDED (UTC)', 'SOURCE', 'JOB']];
    for (const l of listings) {
      const position = l.index === undefined ? '-' : `${l.index}/${l.offset}`;
      const lag = l.lagSeconds === undefined ? '-' : `${l.lagSeconds.toFixed(1)}s`;
      const ended = l.endedAt ? l.endedAt.slice(0, 19).replace('T', ' ') : '-';
      rows.push([l.database, l.state, l.host ?? '-', l.generation ?? '-', position, lag, ended, l.source, l.jobId]);
    }
    const endedCount = listings.filter((l) => l.endedAt).length;
    if (endedCount > 0) {
      // Said under the table so an operator knows these rows are history, not replicators to worry about.
      rows.push([`${endedCount} ended: a stopped one is replaced when the database is replicated again; the queue drops ended rows with their jobs (completed after 7 days, failed after 30)`]);
    }
    if (hidden > 0) {
      const failed = everything.filter((l) => l.endedAt && Date.parse(l.endedAt) < shownSince && l.state.startsWith('failed')).length;
      rows.push([`${hidden} ended more than a day ago${failed ? ` (${failed} failed)` : ''}, not shown: replicate ls --all`]);
    }
    const table = rows.filter((row) => row.length > 1);
    const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
    for (const row of rows) process.stdout.write((row.length > 1 ? row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ') : row[0]!).trimEnd() + '\n');
    return 0;
  } finally {
    await closeQueue(client);
  }
}

async function listReplicators(client: SnapworkerClient): Promise<ReplicatorListing[]> {
  const jobs = (await client.queue.getJobs([...LIVE_STATES, 'failed', 'completed'])).filter((job) => job?.name === 'replicate');
  const listings: ReplicatorListing[] = [];
  for (const job of jobs) {
    const state = await job.getState();
    const data = job.data as ReplicateJobData;
    const status = replicationStatusOf(job.progress);
    listings.push({
      jobId: job.id!,
      database: data.name ?? status?.database ?? '?',
      source: data.source,
      repo: data.repo,
      state: describeState(state, job, status),
      ...(state === 'active' && status ? liveFields(status) : {}),
      ...(state === 'completed' || state === 'failed' ? endedFields(job, status) : {}),
    });
  }
  return listings.sort((a, b) => a.database.localeCompare(b.database) || a.jobId.localeCompare(b.jobId));
}

function describeState(state: string, job: Job, status: ReplicationStatus | undefined): string {
  if (state === 'active') return status?.state ?? 'starting';
  // A replicator completes only when stopped; one stopped before that change failed as cancelled.
  if (state === 'completed') return 'stopped';
  if (state === 'failed') return job.failedReason === 'cancelled by request' ? 'stopped' : `failed: ${job.failedReason}`;
  return state;
}

/** When an ended replicator ended, and the last position it shipped (its result, else its last status). */
function endedFields(job: Job, status: ReplicationStatus | undefined): Partial<ReplicatorListing> {
  const result = job.returnvalue as Partial<ReplicateJobResult> | null | undefined;
  const last = result?.generation ? result : status;
  return {
    ...(job.finishedOn ? { endedAt: new Date(job.finishedOn).toISOString() } : {}),
    ...(last?.generation ? { generation: last.generation, index: last.index, offset: last.offset, shippedAt: last.shippedAt } : {}),
  };
}

function liveFields(status: ReplicationStatus): Partial<ReplicatorListing> {
  const lag = lagSeconds(status);
  return {
    host: status.host,
    ...(status.generation ? { generation: status.generation, index: status.index, offset: status.offset, shippedAt: status.shippedAt } : {}),
    ...(status.syncedFrom ? { syncedFrom: status.syncedFrom } : {}),
    ...(lag !== undefined ? { lagSeconds: Math.round(lag * 10) / 10 } : {}),
    ...(status.lastError ? { lastError: status.lastError } : {}),
  };
}

/**
 * `snapworker replicate stop <name|sqlite:///abs/db|jobId>`: cancels the live replicator it names
 * (`job cancel`): its worker ships what is committed, then the job ends as stopped.
 * @throws NotFoundError when no live replicator matches; InvalidInputError when several do
 *   (the same name in several repositories: give --repo or the job id).
 */
export async function runReplicateStop(target: string, options: Pick<CliOptions, 'json' | 'repo'>, config: WorkerConfig): Promise<number> {
  const client = await connectQueue(config);
  let jobId: string;
  try {
    const live = (await listReplicators(client)).filter((l) => !['stopped', 'completed'].includes(l.state) && !l.state.startsWith('failed'));
    const name = target.startsWith('sqlite:') ? undefined : target;
    const matches = live.filter(
      (l) =>
        l.jobId === target ||
        ((name ? l.database === name : l.source === target) && (options.repo === undefined || (l.repo ?? config.defaultRepository) === options.repo)),
    );
    if (matches.length === 0) throw new NotFoundError(`replicate stop: no running replicator for ${target} ("snapworker replicate ls" lists them)`);
    if (matches.length > 1) {
      throw new InvalidInputError(`replicate stop: ${target} names ${matches.length} replicators (${matches.map((m) => m.jobId).join(', ')}); give --repo or the job id`);
    }
    jobId = matches[0]!.jobId;
  } finally {
    await closeQueue(client);
  }
  return runJobCancel(jobId, options, config);
}
