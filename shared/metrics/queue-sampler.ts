import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { RepeatingErrorLog } from '../lifecycle/repeating-error-log.js';
import { samplePeriodically, type PeriodicSampler } from './periodic-sampler.js';
import { QUEUE_STATES, type ScheduleSample, type WorkerMetrics } from './metrics.js';

export interface QueueSamplerOptions {
  /** Time between samples. Default 15 000 ms (a typical scrape interval). */
  intervalMs?: number;
  /** Schedules to sample too (last success, last failure, next run, interval per schedule). */
  schedules?: { list(): Promise<ScheduleStatusLike[]> };
  /** Where sampling failures are logged (at `warn`); the sampler keeps going. Default: not logged. */
  logger?: Logger;
}

export type QueueSampler = PeriodicSampler;

const DEFAULT_INTERVAL_MS = 15_000;

/**
 * Samples queue depth by state and the age of the oldest waiting job into `metrics`, now and then
 * every `intervalMs`: on a timer rather than per scrape, so Prometheus (or several of them)
 * scraping many workers never multiplies the load on Redis. One sample costs one Lua call for the
 * counts and one for peeking at the head of the waiting list and the prioritized set.
 *
 * The values are queue-wide: every worker of a queue reports the same figures, so dashboards and
 * alerts aggregate them with `max` (never `sum`) over instances.
 *
 * The oldest-waiting age looks at the oldest job of the plain waiting list and the next job of the
 * prioritized set. A low-priority job starved behind a steady stream of higher-priority ones is
 * not seen by it; `snapworker_queue_jobs{state="prioritized"}` shows that backlog.
 *
 * A failed sample (Redis down) is logged once per state and leaves the previous values; it never
 * throws.
 */
export function startQueueSampler(queue: Queue, metrics: WorkerMetrics, options: QueueSamplerOptions = {}): QueueSampler {
  // Redis down fails every tick the same way: one line per state, not a stack per tick.
  const failures = options.logger && new RepeatingErrorLog(options.logger, `queue sampler: sample queue ${queue.name}`);
  const sampleOnce = async (): Promise<void> => {
    try {
      await sampleQueue(queue, metrics);
      if (options.schedules) await sampleSchedules(options.schedules, metrics);
      failures?.recovered();
    } catch (err) {
      failures?.error(err);
    }
  };
  return samplePeriodically(sampleOnce, options.intervalMs ?? DEFAULT_INTERVAL_MS, 'queue sampler');
}

/** What the sampler reads of a schedule (`ScheduleStatus` in jobs/schedules.ts). */
export interface ScheduleStatusLike {
  definition: { name: string };
  nextRunAt?: number;
  intervalSeconds: number;
  lastRun?: { lastSuccessAt?: string; lastFailureAt?: string };
}

/** Reads every schedule's status once (two hash reads and one per schedule) and records it. */
export async function sampleSchedules(schedules: { list(): Promise<ScheduleStatusLike[]> }, metrics: WorkerMetrics): Promise<void> {
  const seconds = (iso: string | undefined) => (iso === undefined ? undefined : Date.parse(iso) / 1000);
  const samples = new Map<string, ScheduleSample>();
  for (const status of await schedules.list()) {
    samples.set(status.definition.name, {
      lastSuccess: seconds(status.lastRun?.lastSuccessAt),
      lastFailure: seconds(status.lastRun?.lastFailureAt),
      nextRun: status.nextRunAt === undefined ? undefined : status.nextRunAt / 1000,
      interval: status.intervalSeconds,
    });
  }
  metrics.setSchedules(samples);
}

/** Reads the counts and the oldest waiting job once and records them. */
export async function sampleQueue(queue: Queue, metrics: WorkerMetrics, now = Date.now()): Promise<void> {
  const [counts, heads] = await Promise.all([
    queue.getJobCounts(...QUEUE_STATES),
    // Ascending, one job per list/set: the wait list's oldest (LRANGE of one), the paused list's
    // oldest and the prioritized set's next (ZRANGE of one). No scan.
    queue.getJobs(['waiting', 'prioritized'], 0, 0, true),
  ]);
  // BullMQ counts jobs of a paused queue under `paused`; they wait all the same.
  metrics.setQueueDepth({
    waiting: (counts.waiting ?? 0) + (counts.paused ?? 0),
    prioritized: counts.prioritized ?? 0,
    delayed: counts.delayed ?? 0,
    active: counts.active ?? 0,
    failed: counts.failed ?? 0,
  });
  let oldestReadyAt = Infinity;
  for (const job of heads) {
    // A job that was delayed has been waiting only since its delay ran out.
    const readyAt = job.timestamp + (job.delay ?? 0);
    if (readyAt < oldestReadyAt) oldestReadyAt = readyAt;
  }
  metrics.setOldestWaitingAge(Number.isFinite(oldestReadyAt) ? Math.max(0, (now - oldestReadyAt) / 1000) : 0);
}
