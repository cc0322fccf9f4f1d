import { Queue } from 'bullmq';
import { checkServerMode, closeConnection, toConnection } from '../jobs/redis-connection.js';
import { ScheduleBook } from '../jobs/schedules.js';
import type { WorkerConfig } from '../shared/config.js';
import { AbortedError, errorMessage, SnapworkerError } from '../shared/errors.js';
import { nullEventSink, type JobEventSink } from '../shared/events/job-events.js';
import { createNatsEventSink } from '../shared/events/nats-event-sink.js';
import { RepeatingErrorLog } from '../shared/lifecycle/repeating-error-log.js';
import { settledWithin } from '../shared/lifecycle/settle-within.js';
import type { Logger } from '../shared/logging.js';
import { WorkerMetrics } from '../shared/metrics/metrics.js';
import { startQueueSampler, type QueueSampler } from '../shared/metrics/queue-sampler.js';
import { startRepositorySampler } from '../shared/metrics/repository-sampler.js';
import { redactUrl } from '../shared/redact-url.js';
import { TOOL } from '../shared/tool.js';
import { startHealthServer } from './http-server.js';
import { JobRuntime } from './job-runner.js';
import { QueueWorker } from './queue-worker.js';
import { startScheduleFileReconciler, type ScheduleFileReconciler } from './schedule-file.js';

export interface RunningWorker {
  metricsPort: number;
  /**
   * Graceful stop (see QueueWorker.close), bounded: every cleanup step runs even if one fails,
   * and a step that does not finish in time (Redis or NATS unreachable) is left behind, so stop
   * returns at most a few seconds after the shutdown grace.
   */
  stop(): Promise<void>;
}

/** How long each cleanup step after the queue worker may take before it is left behind. */
const STEP_TIMEOUT_MS = 2000;

/**
 * Wires a worker process together: the health server first (a port in use fails the start before
 * anything connects), then metrics, events and the queue worker. Resolves once the queue worker
 * is connected to Redis; while Redis is unreachable it keeps waiting (and `/readyz` says 503).
 * @param signal aborts a start still waiting for Redis (SIGTERM during start)
 * @throws SnapworkerError naming the port when the health server cannot listen, AbortedError when
 *   `signal` fired first; whatever was started is stopped again before it throws.
 */
export async function startWorker(config: WorkerConfig, logger: Logger, signal?: AbortSignal): Promise<RunningWorker> {
  const metrics = new WorkerMetrics({ version: TOOL.version });
  let queueWorker: QueueWorker | undefined;
  const health = await startHealthServer({
    host: config.metricsHost,
    port: config.metricsPort,
    metrics: async () => ({ body: await metrics.metrics(), contentType: metrics.contentType }),
    ready: async () => (queueWorker ? queueWorker.ready() : false),
  }).catch((err: unknown) => {
    throw new SnapworkerError(`metrics server: listen on ${config.metricsHost}:${config.metricsPort}: ${errorMessage(err)}`, { cause: err });
  });

  const events: JobEventSink = config.natsUrl
    ? createNatsEventSink({ url: config.natsUrl, logger, onDropped: () => metrics.eventDropped() })
    : nullEventSink;
  const runtime = new JobRuntime(config, logger, metrics);
  // A separate Queue handle for sampling depth and for schedules: it never takes jobs.
  const connection = toConnection(config.redisUrl);
  const queue = new Queue(config.queueName, { connection, prefix: config.prefix });
  // Without a listener BullMQ prints every connection error with its stack; one line per state.
  const queueErrors = new RepeatingErrorLog(logger, `queue sampler on ${redactUrl(config.redisUrl)}`);
  queue.on('error', (err) => queueErrors.error(err));
  const schedules = new ScheduleBook(queue);
  queueWorker = new QueueWorker(config, { runtime, logger, metrics, events, schedules });
  // Started once the server is known to be of the right kind (below).
  let sampler: QueueSampler | undefined;
  let repositorySampler: QueueSampler | undefined;
  let scheduleFile: ScheduleFileReconciler | undefined;

  const steps: Array<[string, () => Promise<unknown>]> = [
    ['queue worker', () => queueWorker.close(config.shutdownGraceSeconds)],
    ['queue sampler', async () => sampler?.stop()],
    ['repository sampler', async () => repositorySampler?.stop()],
    // A cluster connection is an instance BullMQ never closes.
    ['queue', () => queue.close().then(() => closeConnection(connection))],
    ['events', () => events.close()],
    ['repositories', () => runtime.close()],
    ['health server', () => health.close()],
  ];
  const running: RunningWorker = {
    metricsPort: health.port,
    async stop() {
      const run = ([name, step]: [string, () => Promise<unknown>]) =>
        step().catch((err: unknown) => logger.error({ err: errorMessage(err) }, `closing ${name} failed`));
      await scheduleFile?.stop();
      // The queue worker first (running jobs still report progress and events); it bounds itself.
      await run(steps[0]!);
      // The rest are independent: together, a few seconds at most.
      await Promise.all(
        steps.slice(1).map(async (entry) => {
          if (await settledWithin(run(entry), STEP_TIMEOUT_MS)) return;
          logger.warn(`closing ${entry[0]} did not finish in ${STEP_TIMEOUT_MS / 1000}s; left behind`);
          // Dropping the connection is all that is left; waiting for it could hang too.
          if (entry[0] === 'queue') void queue.disconnect().catch(() => {});
        }),
      );
    },
  };

  try {
    const start = async () => {
      await checkServerMode(await queue.client, config.redisUrl);
      sampler = startQueueSampler(queue, metrics, { logger, schedules });
      repositorySampler = startRepositorySampler(Object.keys(config.repositories), (name) => runtime.repository(name), metrics, { logger });
      await queueWorker.start();
    };
    await untilAborted(start(), signal);
    if (config.schedulesFile) scheduleFile = await startScheduleFileReconciler({ file: config.schedulesFile, book: schedules, logger });
  } catch (err) {
    await running.stop();
    throw err;
  }
  logger.info(
    { queue: config.queueName, prefix: config.prefix, redis: redactUrl(config.redisUrl), concurrency: config.concurrency, metricsPort: health.port, repositories: Object.keys(config.repositories) },
    'worker started',
  );
  return running;
}

/** `work`, or an AbortedError as soon as `signal` fires. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(new AbortedError('worker start interrupted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError('worker start interrupted'));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
