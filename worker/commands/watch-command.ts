import type { WorkerConfig } from '../../shared/config.js';
import { InvalidInputError } from '../../shared/errors.js';
import { InterruptedError } from './exit-codes.js';
import type { CliOptions } from './flags.js';
import { followJob } from './job-commands.js';
import { endedJobEvent } from './job-control.js';
import { closeQueue, connectQueue } from './queue-connection.js';
import { formatEvent, runWatch } from './watch.js';

function notInQueue(jobId: string, config: WorkerConfig): InvalidInputError {
  return new InvalidInputError(`watch: job ${jobId}: not in queue ${config.queueName} (unknown, or removed after it ended)`);
}

/** `watch [jobId]`: NATS events; one job that already ended (or no NATS) goes through the queue. */
export async function runWatchCommand(jobId: string | undefined, options: CliOptions, config: WorkerConfig): Promise<number> {
  if (!config.natsUrl) {
    if (jobId === undefined) throw new InvalidInputError('watch: NATS_URL is not set (watching one job works without it: watch <jobId>)');
    const client = await connectQueue(config);
    try {
      const job = await client.queue.getJob(jobId);
      if (!job) throw notInQueue(jobId, config);
      try {
        await followJob(client, job, job.name, options);
      } catch (err) {
        if (err instanceof InterruptedError) throw err;
      }
      // Printed as the event NATS would have carried, so both ways read the same.
      const ended = await endedJobEvent(client, jobId);
      if (!ended) throw new InvalidInputError(`watch: job ${jobId}: removed before it could be read`);
      process.stdout.write((options.json ? JSON.stringify(ended) : formatEvent(ended)) + '\n');
      return ended.event === 'completed' ? 0 : 1;
    } finally {
      await closeQueue(client);
    }
  }
  const client = jobId === undefined ? undefined : await connectQueue(config).catch(() => undefined);
  try {
    // Without this a mistyped id would be watched forever: no event ever comes for it. A queue we
    // cannot reach does not stop watching NATS, which is all this branch needs.
    if (client && !(await client.queue.getJob(jobId!).catch(() => true))) throw notInQueue(jobId!, config);
    return await runWatch({ natsUrl: config.natsUrl, jobId, json: options.json, ended: client && (() => endedJobEvent(client, jobId!)) });
  } finally {
    if (client) await closeQueue(client);
  }
}
