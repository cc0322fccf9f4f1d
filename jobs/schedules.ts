import { getNextMillis, type Queue } from 'bullmq';
import { InvalidInputError, NotFoundError } from '../shared/errors.js';
import { DEFAULT_JOB_OPTIONS } from './job-options.js';
import { durationSeconds, JOB_PRIORITY, scheduleSchema, type ScheduleDefinition, type SnapshotJobData } from './schemas.js';
import { describeIssues } from './validate.js';

/** The outcome of a schedule's latest run, written by the worker that ran it. */
export interface ScheduleRun {
  /** ISO time the run finished. */
  at: string;
  result: 'succeeded' | 'failed';
  jobId: string;
  snapshotId?: string;
  error?: string;
  lastSuccessAt?: string;
  lastFailureAt?: string;
}

/** A schedule as `schedule ls` and `show` report it. */
export interface ScheduleStatus {
  definition: ScheduleDefinition;
  /** Epoch ms of the next run; absent while paused. */
  nextRunAt?: number;
  /** Time between runs: the interval, or for cron the gap between the next two slots. */
  intervalSeconds: number;
  lastRun?: ScheduleRun;
}

/**
 * Schedules on BullMQ job schedulers (`Queue.upsertJobScheduler`): Redis holds them, so they
 * survive restarts, and BullMQ creates exactly one job per slot however many workers run. The
 * scheduler id is the schedule name; each slot's job is a `snapshot` job whose data carries
 * `schedule: { name, retention }`, and its job id is `repeat:<name>:<slot epoch ms>`.
 * Definitions (and the paused state, which BullMQ has no notion of) live next to the queue's keys
 * in the hash `<prefix>:<queue>:snapworker:schedules`; each run's outcome in
 * `<prefix>:<queue>:snapworker:schedule-runs`.
 */
export class ScheduleBook {
  constructor(private readonly queue: Queue) {}

  /**
   * Adds or replaces a schedule (and starts it unless `paused`).
   * @throws InvalidInputError naming the field or the bad cron pattern.
   */
  async put(definition: ScheduleDefinition): Promise<ScheduleDefinition> {
    const parsed = scheduleSchema.safeParse(definition);
    if (!parsed.success) throw new InvalidInputError(`invalid schedule: ${describeIssues(parsed.error.issues, definition).join('; ')}`);
    const valid = parsed.data;
    if (valid.paused) await this.queue.removeJobScheduler(valid.name);
    else await this.start(valid);
    await (await this.redis()).hset(this.key('schedules'), { [valid.name]: JSON.stringify(valid) });
    return valid;
  }

  /** @throws NotFoundError when there is no schedule `name`. */
  async get(name: string): Promise<ScheduleStatus> {
    const text = await (await this.redis()).hget(this.key('schedules'), name);
    if (text === null) throw new NotFoundError(`no schedule ${name}`);
    return this.status(JSON.parse(text) as ScheduleDefinition, await this.lastRuns());
  }

  /** Every schedule, by name. */
  async list(): Promise<ScheduleStatus[]> {
    const all = await (await this.redis()).hgetall(this.key('schedules'));
    const runs = await this.lastRuns();
    const names = Object.keys(all).sort();
    return Promise.all(names.map((name) => this.status(JSON.parse(all[name]!) as ScheduleDefinition, runs)));
  }

  /** Stops and forgets a schedule; its snapshots stay. @throws NotFoundError when unknown. */
  async remove(name: string): Promise<void> {
    await this.get(name);
    await this.queue.removeJobScheduler(name);
    const redis = await this.redis();
    await redis.hdel(this.key('schedules'), name);
    await redis.hdel(this.key('schedule-runs'), name);
  }

  /** Stops creating runs until `resume`; the definition stays. */
  async pause(name: string): Promise<void> {
    await this.put({ ...(await this.get(name)).definition, paused: true });
  }

  async resume(name: string): Promise<void> {
    const { paused: _paused, ...definition } = (await this.get(name)).definition;
    await this.put(definition);
  }

  /** Enqueues one run now, outside the slots (paused or not); returns its job id. */
  async runNow(name: string): Promise<string> {
    const { definition } = await this.get(name);
    const job = await this.queue.add('snapshot', jobDataOf(definition), {
      ...DEFAULT_JOB_OPTIONS,
      priority: JOB_PRIORITY.snapshot,
      jobId: `schedule-${name}-${Date.now()}`,
    });
    return job.id!;
  }

  /** Records the outcome of a run (called by the worker that ran it). */
  async recordRun(name: string, run: Omit<ScheduleRun, 'lastSuccessAt' | 'lastFailureAt'>): Promise<ScheduleRun> {
    const redis = await this.redis();
    const previous = (await this.lastRuns())[name];
    const merged: ScheduleRun = {
      ...run,
      lastSuccessAt: run.result === 'succeeded' ? run.at : previous?.lastSuccessAt,
      lastFailureAt: run.result === 'failed' ? run.at : previous?.lastFailureAt,
    };
    await redis.hset(this.key('schedule-runs'), { [name]: JSON.stringify(merged) });
    return merged;
  }

  private async start(definition: ScheduleDefinition): Promise<void> {
    intervalSeconds(definition); // a bad cron pattern fails here, before Redis is touched
    const repeat = definition.cron
      ? { pattern: definition.cron, ...(definition.tz ? { tz: definition.tz } : {}) }
      : { every: durationSeconds(definition.every!) * 1000 };
    await this.queue.upsertJobScheduler(definition.name, repeat, {
      name: 'snapshot',
      data: jobDataOf(definition),
      opts: { ...DEFAULT_JOB_OPTIONS, priority: JOB_PRIORITY.snapshot },
    });
  }

  private async status(definition: ScheduleDefinition, runs: Record<string, ScheduleRun>): Promise<ScheduleStatus> {
    const scheduler = definition.paused ? undefined : await this.queue.getJobScheduler(definition.name);
    return {
      definition,
      intervalSeconds: intervalSeconds(definition),
      ...(scheduler?.next !== undefined ? { nextRunAt: scheduler.next } : {}),
      ...(runs[definition.name] ? { lastRun: runs[definition.name] } : {}),
    };
  }

  private async lastRuns(): Promise<Record<string, ScheduleRun>> {
    const all = await (await this.redis()).hgetall(this.key('schedule-runs'));
    return Object.fromEntries(Object.entries(all).map(([name, text]) => [name, JSON.parse(text) as ScheduleRun]));
  }

  private key(what: 'schedules' | 'schedule-runs'): string {
    return `${this.queue.opts.prefix ?? 'bull'}:${this.queue.name}:snapworker:${what}`;
  }

  private redis() {
    return this.queue.client;
  }
}

/**
 * Seconds between runs: `every`, or for a cron pattern the gap between its next two slots (with
 * BullMQ's own parser, so it agrees with when jobs are created).
 * @throws InvalidInputError naming the pattern when BullMQ cannot parse it.
 */
export function intervalSeconds(definition: ScheduleDefinition, now = Date.now()): number {
  if (!definition.cron) return durationSeconds(definition.every!);
  const options = { pattern: definition.cron, ...(definition.tz ? { tz: definition.tz } : {}) };
  try {
    const first = getNextMillis(now, options);
    const second = first === undefined ? undefined : getNextMillis(first, options);
    if (first === undefined || second === undefined) throw new Error('it never fires');
    return (second - first) / 1000;
  } catch (err) {
    throw new InvalidInputError(`schedule ${definition.name}: cron "${definition.cron}" is invalid: ${(err as Error).message}`, { cause: err });
  }
}

/** The snapshot job data each run of `definition` enqueues. */
export function jobDataOf(definition: ScheduleDefinition): SnapshotJobData {
  const retention = definition.retention && { ...definition.retention, ...(definition.tz && !definition.retention.tz ? { tz: definition.tz } : {}) };
  return { ...definition.job, schedule: { name: definition.name, ...(retention ? { retention } : {}) } };
}
