import { Queue } from 'bullmq';
import { toConnection } from '../jobs/client.js';
import { ScheduleBook } from '../jobs/schedules.js';
import type { WorkerConfig } from '../shared/config.js';
import { errorMessage } from '../shared/errors.js';
import { nullEventSink, type JobEventSink } from '../shared/events/job-events.js';
import { createNatsEventSink } from '../shared/events/nats-event-sink.js';
import type { Logger } from '../shared/logging.js';
import { WorkerMetrics } from '../shared/metrics/metrics.js';
import { startQueueSampler } from '../shared/metrics/queue-sampler.js';
import { TOOL } from '../shared/tool.js';
import { startHealthServer } from './http-server.js';
import { JobRuntime } from './job-runner.js';
import { QueueWorker } from './queue-worker.js';
import { startScheduleFileReconciler } from './schedule-file.js';

export interface RunningWorker {
  metricsPort: number;
  /** Graceful stop (see QueueWorker.close); every cleanup step runs even if one fails. */
  stop(): Promise<void>;
}

/** Wires a worker process together: metrics, events, the queue worker, the health server. */
export async function startWorker(config: WorkerConfig, logger: Logger): Promise<RunningWorker> {
  const metrics = new WorkerMetrics({ version: TOOL.version });
  const events: JobEventSink = config.natsUrl
    ? createNatsEventSink({ url: config.natsUrl, logger, onDropped: () => metrics.eventDropped() })
    : nullEventSink;
  const runtime = new JobRuntime(config, logger, metrics);
  // A separate Queue handle for sampling depth and for schedules: it never takes jobs.
  const queue = new Queue(config.queueName, { connection: toConnection(config.redisUrl), prefix: config.prefix });
  const schedules = new ScheduleBook(queue);
  const queueWorker = new QueueWorker(config, { runtime, logger, metrics, events, schedules });
  const sampler = startQueueSampler(queue, metrics, { logger, schedules });
  const health = await startHealthServer({
    host: config.metricsHost,
    port: config.metricsPort,
    metrics: async () => ({ body: await metrics.metrics(), contentType: metrics.contentType }),
    ready: () => queueWorker.ready(),
  });
  await queueWorker.start();
  const scheduleFile = config.schedulesFile ? await startScheduleFileReconciler({ file: config.schedulesFile, book: schedules, logger }) : undefined;
  logger.info(
    { queue: config.queueName, prefix: config.prefix, concurrency: config.concurrency, metricsPort: health.port, repositories: Object.keys(config.repositories) },
    'worker started',
  );

  return {
    metricsPort: health.port,
    async stop() {
      const steps: Array<[string, () => Promise<unknown>]> = [
        ['schedules file', async () => scheduleFile?.stop()],
        ['queue worker', () => queueWorker.close(config.shutdownGraceSeconds)],
        ['queue sampler', () => sampler.stop()],
        ['queue', () => queue.close()],
        ['events', () => events.close()],
        ['repositories', () => runtime.close()],
        ['health server', () => health.close()],
      ];
      for (const [name, step] of steps) {
        try {
          await step();
        } catch (err) {
          logger.error({ err: errorMessage(err) }, `closing ${name} failed`);
        }
      }
    },
  };
}
