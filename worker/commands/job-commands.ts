import { SnapworkerClient } from '../../jobs/client.js';
import type { JobResultByKind } from '../../jobs/results.js';
import type { JobDataByKind } from '../../jobs/schemas.js';
import { parseJobData } from '../../jobs/validate.js';
import type { WorkerConfig } from '../../shared/config.js';
import { SnapworkerError } from '../../shared/errors.js';
import type { JobKind } from '../../shared/job-kind.js';
import type { Logger } from '../../shared/logging.js';
import { ProgressTracker } from '../../shared/progress.js';
import { JobRuntime, runJob } from '../job-runner.js';
import { formatBytes, ProgressBar } from '../progress-bar.js';
import type { EntryNotice } from '../../shared/sources/notices.js';
import { exitCodeForResult } from './exit-code.js';
import type { CliOptions } from './options.js';
import { formatPruneReport } from './prune-report.js';

/**
 * Runs a job the way the options say: enqueue and print its id (default), enqueue and follow it
 * (`--wait`), or run it in this process without Redis (`--local`). Returns the exit code.
 */
export async function runJobCommand<K extends JobKind>(
  kind: K,
  data: JobDataByKind[K],
  options: CliOptions,
  config: WorkerConfig,
  logger: Logger,
): Promise<number> {
  const valid = parseJobData(kind, data);
  if (options.local) return printResult(kind, await runLocally(kind, valid, options, config, logger), options);

  const client = new SnapworkerClient({ connection: config.redisUrl, queueName: config.queueName, prefix: config.prefix });
  try {
    const job = await client.enqueue(kind, valid, { ...(options['job-id'] ? { jobId: options['job-id'] } : {}) });
    if (!options.wait) {
      process.stdout.write(options.json ? JSON.stringify({ jobId: job.id, kind }) + '\n' : `${job.id}\n`);
      return 0;
    }
    if (!options.json) process.stderr.write(`${kind} job ${job.id} enqueued; waiting for a worker\n`);
    const bar = new ProgressBar();
    try {
      const result = await client.waitForResult<K>(job, { onProgress: (report) => bar.update(report) });
      bar.done();
      return printResult(kind, result, options);
    } catch (err) {
      bar.done();
      throw new SnapworkerError(`${kind} job ${job.id} failed: ${(err as Error).message}`);
    }
  } finally {
    await client.close();
  }
}

async function runLocally<K extends JobKind>(
  kind: K,
  data: JobDataByKind[K],
  options: CliOptions,
  config: WorkerConfig,
  logger: Logger,
): Promise<JobResultByKind[K]> {
  const runtime = new JobRuntime(config, logger);
  const controller = new AbortController();
  const onSignal = () => controller.abort(new SnapworkerError('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const bar = new ProgressBar();
  const tracker = new ProgressTracker((report) => {
    if (!options.json) bar.update(report);
  }, 200);
  try {
    // Named notices go to stderr as they come, like restic's warnings; the record counts them all.
    const onNotice = (notice: EntryNotice) => process.stderr.write(`snapworker: warning: ${notice.kind} ${notice.path}: ${notice.reason}\n`);
    return await runJob({ kind, data, signal: controller.signal, progress: tracker, onNotice }, runtime);
  } finally {
    bar.done();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await runtime.close();
  }
}

function printResult<K extends JobKind>(kind: K, result: JobResultByKind[K], options: CliOptions): number {
  process.stdout.write((options.json ? JSON.stringify(result, null, 2) : summarize(kind, result)) + '\n');
  return exitCodeForResult(kind, result);
}

function summarize<K extends JobKind>(kind: K, result: JobResultByKind[K]): string {
  switch (kind) {
    case 'snapshot': {
      const r = result as JobResultByKind['snapshot'];
      return `snapshot ${r.id} of ${r.source.name}: ${r.stats.entries} entries, ${formatBytes(r.stats.rawBytes)} → ${formatBytes(r.archive.size)} in ${r.stats.durationSeconds.toFixed(1)}s (${r.archive.checksum})${noticeSummary(r)}`;
    }
    case 'restore': {
      const r = result as JobResultByKind['restore'];
      return `restored ${r.snapshotId} into ${r.target}: ${r.entries} entries, ${formatBytes(r.bytes)}`;
    }
    case 'verify': {
      const r = result as JobResultByKind['verify'];
      return `snapshot ${r.snapshotId} verified: ${r.entries} entries, ${formatBytes(r.rawBytes)}${r.sealed ? ', seal valid' : ''}`;
    }
    default: {
      return formatPruneReport(result as JobResultByKind['prune']);
    }
  }
}

/** `; INCOMPLETE: 2 unreadable, 1 unsupported entries not kept (see the record)`, or nothing. */
function noticeSummary(record: JobResultByKind['snapshot']): string {
  if (!record.notices) return '';
  const counts = Object.entries(record.notices.counts).map(([kind, n]) => `${n} ${kind}`).join(', ');
  return `; ${record.incomplete ? 'INCOMPLETE: ' : ''}${counts} entries not kept exactly (named in the record)`;
}
