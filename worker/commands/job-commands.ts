import type { Job } from 'bullmq';
import { checkJobId, type SnapworkerClient } from '../../jobs/client.js';
import type { JobResultByKind } from '../../jobs/results.js';
import type { JobDataByKind } from '../../jobs/schemas.js';
import { parseJobData } from '../../jobs/validate.js';
import type { WorkerConfig } from '../../shared/config.js';
import { errorMessage } from '../../shared/errors.js';
import type { JobKind } from '../../shared/job-kind.js';
import type { Logger } from '../../shared/logging.js';
import { ProgressTracker } from '../../shared/progress.js';
import { JobRuntime, runJob } from '../job-runner.js';
import { ProgressBar } from '../progress-bar.js';
import { exitCodeForResult, InterruptedError } from './exit-codes.js';
import type { CliOptions } from './flags.js';
import { stoppedFollowing } from './job-control.js';
import { failureOf } from './job-failure.js';
import { summarizeResult } from './job-summary.js';
import { closeQueue, connectQueue } from './queue-connection.js';
import { untilInterrupted } from './interrupt.js';
import type { EntryNotice } from '../../shared/kinds/notices.js';

/**
 * Runs a job the way the options say: enqueue and print its id (default), enqueue and follow it
 * (`--wait`), or run it in this process without Redis (`--local`). Data and job id are checked
 * before anything is enqueued. Returns the exit code (see exit-codes.ts).
 * @throws the job's failure as its error class (same class for `--local` and `--wait`).
 */
export async function runJobCommand<K extends JobKind>(
  kind: K,
  data: JobDataByKind[K],
  options: CliOptions,
  config: WorkerConfig,
  logger: Logger,
): Promise<number> {
  const valid = parseJobData(kind, data);
  if (options['job-id'] !== undefined) checkJobId(options['job-id']);
  if (options.local) return printResult(kind, await runLocally(kind, valid, options, config, logger), options);

  const client = await connectQueue(config);
  try {
    const job = await client.enqueue(kind, valid, { ...(options['job-id'] ? { jobId: options['job-id'] } : {}) });
    if (!options.wait) {
      process.stdout.write(options.json ? JSON.stringify({ jobId: job.id, kind }) + '\n' : `${job.id}\n`);
      return 0;
    }
    return printResult(kind, await followJob<K>(client, job, kind, options), options);
  } finally {
    await closeQueue(client);
  }
}

/**
 * Follows a queued job to its result, with a live progress bar on a terminal (never with
 * `--json`, never without a terminal). A job that already ended is reported at once.
 * @throws InterruptedError on Ctrl-C, saying where the job is (waiting, running, ended) and how
 *   to cancel it; the job's
 *   failure as its error class.
 */
export async function followJob<K extends JobKind>(client: SnapworkerClient, job: Job, kind: string, options: Pick<CliOptions, 'json'>): Promise<JobResultByKind[K]> {
  const bar = !options.json && process.stderr.isTTY ? new ProgressBar(process.stderr) : undefined;
  if (bar) process.stderr.write(`${kind} job ${job.id} enqueued; waiting for a worker\n`);
  // Marks the interruption; the line the user reads is built below, once the queue says where the job is.
  const interrupted = () => new InterruptedError(`stopped following job ${job.id}`);
  try {
    return await untilInterrupted(client.waitForResult<K>(job, { onProgress: (report) => bar?.update(report) }), interrupted);
  } catch (err) {
    if (err instanceof InterruptedError) {
      bar?.done();
      throw await stoppedFollowing(client, job.id!);
    }
    const failed = await client.queue.getJob(job.id!).catch(() => undefined);
    throw failureOf(failed ?? job, `${kind} job ${job.id} failed: ${errorMessage(err)}`);
  } finally {
    bar?.done();
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
  const bar = !options.json && process.stderr.isTTY ? new ProgressBar(process.stderr) : undefined;
  const tracker = new ProgressTracker((report) => bar?.update(report), 200);
  try {
    // Named notices go to stderr as they come, like restic's warnings; the record counts them all.
    const onNotice = (notice: EntryNotice) => process.stderr.write(`snapworker: warning: ${notice.kind} ${notice.path}: ${notice.reason}\n`);
    return await untilInterrupted(runJob({ kind, data, signal: controller.signal, progress: tracker, onNotice }, runtime), () => {
      // Stop the job itself: its cleanup (temp files, staging) runs before the command exits.
      const interrupted = new InterruptedError(`${kind} interrupted`);
      controller.abort(interrupted);
      return interrupted;
    }, { waitForWork: true });
  } finally {
    bar?.done();
    await runtime.close();
  }
}

function printResult<K extends JobKind>(kind: K, result: JobResultByKind[K], options: CliOptions): number {
  process.stdout.write((options.json ? JSON.stringify(result, null, 2) : summarizeResult(kind, result)) + '\n');
  return exitCodeForResult(kind, result);
}
