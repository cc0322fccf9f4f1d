import { Queue } from 'bullmq';
import { checkServerMode, closeConnection, toConnection } from '../jobs/redis-connection.js';
import type { WorkerConfig } from '../shared/config.js';
import { errorMessage } from '../shared/errors.js';
import { nullEventSink, type JobEventSink } from '../shared/events/job-events.js';
import { createNatsEventSink } from '../shared/events/nats-event-sink.js';
import type { Logger } from '../shared/logging.js';
import { WorkerMetrics } from '../shared/metrics/metrics.js';
import { startQueueSampler } from '../shared/metrics/queue-sampler.js';
import { redactUrl } from '../shared/redact-url.js';
import { TOOL } from '../shared/tool.js';
import { startHealthServer } from './http-server.js';
import { JobRuntime } from './job-runner.js';
import { QueueWorker } from './queue-worker.js';

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
  const queueWorker = new QueueWorker(config, { runtime, logger, metrics, events });
  // A separate Queue handle for sampling depth: it never takes jobs.
  const connection = toConnection(config.redisUrl);
  const queue = new Queue(config.queueName, { connection, prefix: config.prefix });
  const health = await startHealthServer({
    host: config.metricsHost,
    port: config.metricsPort,
    metrics: async () => ({ body: await metrics.metrics(), contentType: metrics.contentType }),
    ready: () => queueWorker.ready(),
  });
  try {
    await checkServerMode(await queue.client, config.redisUrl);
  } catch (err) {
    // A server of the wrong kind may refuse even QUIT (a Sentinel does): then drop the connection.
    await Promise.allSettled([
      queueWorker.worker.close(true),
      queue.close().catch(() => queue.disconnect()),
      closeConnection(connection),
      events.close(),
      health.close(),
    ]);
    throw err;
  }
  const sampler = startQueueSampler(queue, metrics, { logger });
  await queueWorker.start();
  logger.info(
    { queue: config.queueName, prefix: config.prefix, redis: redactUrl(config.redisUrl), concurrency: config.concurrency, metricsPort: health.port, repositories: Object.keys(config.repositories) },
    'worker started',
  );

  return {
    metricsPort: health.port,
    async stop() {
      const steps: Array<[string, () => Promise<unknown>]> = [
        ['queue worker', () => queueWorker.close(config.shutdownGraceSeconds)],
        ['queue sampler', () => sampler.stop()],
        ['queue', () => queue.close()],
        ['queue connection', () => closeConnection(connection)],
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
