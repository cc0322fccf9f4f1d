/**
 * `npm run bench -- --fleet`: small-job throughput and exactly-once of 1, 2, 4 and 8 worker
 * processes, on a standalone Redis and on a 3-master Redis Cluster (both private, on free ports),
 * in one run, several rounds; medians per setting, with where the time went: CPU-seconds per job
 * (workers, Redis, producer) and Redis commands per job (INFO commandstats).
 *
 * A small job is a snapshot of a three-file directory into a file repository, enqueued as a
 * producer would (the client's default options and the snapshot priority), the figure of the
 * performance goal (≥ 200 jobs/s on 2 workers).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SnapworkerClient } from '../../jobs/client.js';
import { DEFAULT_JOB_OPTIONS } from '../../jobs/job-options.js';
import { JOB_PRIORITY } from '../../jobs/schemas.js';
import { median } from '../median.js';
import { clusterRedis, standaloneRedis, type RedisUnderTest, type RedisWork } from './redis-under-test.js';
import { startWorkerFleet } from './worker-fleet.js';

/** Worker processes per setting. */
export const FLEET_SIZES = [1, 2, 4, 8] as const;
/** Jobs each worker process runs at once (SNAPWORKER_CONCURRENCY), as in the queue figure of the default run. */
export const FLEET_CONCURRENCY = 8;
/** A batch not finished in this long stops the bench with the counts (a lost job must not hang it). */
const FINISH_WITHIN_MS = 10 * 60_000;
/** Warm-up jobs per worker before the measured batch (JIT, connections, the repository's first writes). */
const WARM_UP_PER_WORKER = 8;

export interface FleetOptions {
  /** Compiled CLI (`dist/worker/cli.js`). */
  cli: string;
  /** Scratch directory; a `fleet` folder under it is made and removed. */
  work: string;
  /** Rounds; every setting runs once per round, medians reported. */
  rounds: number;
  /** Jobs in each measured batch. */
  jobs: number;
  log?: (line: string) => void;
}

/** One measured batch. */
export interface Measurement {
  jobsPerSecond: number;
  /** CPU-seconds per job of the workers, the Redis servers and the producer (this process). */
  workerCpu: number;
  redisCpu: number;
  producerCpu: number;
  /** CPU-seconds of all three per wall second: 2 means both cores of a 2-core machine. */
  coresBusy: number;
  /** CPU-seconds per wall second every other process on the machine used meanwhile (/proc/stat). */
  othersBusy: number;
  commandsPerJob: number;
  scriptCallsPerJob: number;
  /** Problems with exactly-once, one line each; empty when every job ran once. */
  violations: string[];
}

export interface FleetRow {
  redis: string;
  workers: number;
  runs: Measurement[];
}

/** Runs every setting `rounds` times (standalone and cluster alternating per round) and returns the runs per setting. */
export async function fleetBench(options: FleetOptions): Promise<FleetRow[]> {
  const log = options.log ?? (() => {});
  const root = path.join(options.work, 'fleet');
  rmSync(root, { recursive: true, force: true });
  const source = path.join(root, 'tiny');
  mkdirSync(source, { recursive: true });
  for (const name of ['a.txt', 'b.txt', 'c.txt']) writeFileSync(path.join(source, name), `${name}\n`.repeat(20));
  const servers: RedisUnderTest[] = [];
  try {
    servers.push(await standaloneRedis(), await clusterRedis());
    const rows: FleetRow[] = servers.flatMap((redis) => FLEET_SIZES.map((workers) => ({ redis: redis.kind, workers, runs: [] as Measurement[] })));
    for (let round = 1; round <= options.rounds; round++) {
      for (const row of rows) {
        const redis = servers.find((s) => s.kind === row.redis)!;
        const run = await measure(options, redis, row.workers, root, source);
        row.runs.push(run);
        log(
          `  round ${round}: ${row.redis}, ${row.workers} worker(s): ${run.jobsPerSecond.toFixed(0)} jobs/s, ` +
            `${(run.workerCpu * 1000).toFixed(1)} ms worker CPU/job, ${run.coresBusy.toFixed(2)} cores busy (others ${run.othersBusy.toFixed(2)}), ` +
            `${run.commandsPerJob.toFixed(0)} Redis commands/job${run.violations.length ? `, NOT exactly once: ${run.violations.join('; ')}` : ''}`,
        );
      }
    }
    return rows;
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * One batch of `options.jobs` small snapshots through `workers` fresh worker processes of
 * `options.cli`, into a repository under `root`, of the directory `source` (under `root`).
 * Exported for A/B runs of two builds batch by batch.
 */
export async function measure(options: FleetOptions, redis: RedisUnderTest, workers: number, root: string, source: string): Promise<Measurement> {
  const queueName = `fleet-${randomBytes(4).toString('hex')}`;
  // A hash tag on both, so the key layout is the same and only the server differs.
  const prefix = '{fleet}';
  const repo = path.join(root, queueName);
  const fleet = await startWorkerFleet(options.cli, workers, {
    REDIS_URL: redis.url,
    SNAPWORKER_QUEUE: queueName,
    SNAPWORKER_PREFIX: prefix,
    SNAPWORKER_REPOSITORIES: JSON.stringify({ default: `file://${repo}` }),
    SNAPWORKER_ALLOWED_PATHS: root,
    SNAPWORKER_STAGING_DIR: root,
    SNAPWORKER_CONCURRENCY: String(FLEET_CONCURRENCY),
    LOG_LEVEL: 'warn',
  });
  const client = new SnapworkerClient({ connection: redis.url, queueName, prefix });
  const enqueue = (count: number) =>
    client.queue.addBulk(
      Array.from({ length: count }, (_, i) => ({
        name: 'snapshot',
        data: { v: 1, source: `dir://${source}`, name: `job-${i}`, compression: 'none' },
        opts: { ...DEFAULT_JOB_OPTIONS, priority: JOB_PRIORITY.snapshot },
      })),
    );
  // Polled, not followed through QueueEvents: ten cheap calls a second add little to the counts.
  const finished = async (count: number) => {
    const deadline = Date.now() + FINISH_WITHIN_MS;
    for (;;) {
      const { completed = 0, failed = 0 } = await client.queue.getJobCounts('completed', 'failed');
      if (completed + failed >= count) return;
      if (Date.now() > deadline) throw new Error(`fleet: ${workers} worker(s) on ${redis.kind} finished ${completed + failed} of ${count} jobs in ${FINISH_WITHIN_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  try {
    const warmUp = WARM_UP_PER_WORKER * workers;
    await enqueue(warmUp);
    await finished(warmUp);

    await redis.reset();
    const workerCpuBefore = fleet.cpuSeconds();
    const producerBefore = process.cpuUsage();
    const machineBefore = machineBusySeconds();
    const started = Date.now();
    const jobs = await enqueue(options.jobs);
    await finished(warmUp + options.jobs);
    const seenDone = Date.now();
    const work: RedisWork = await redis.read();
    const workerCpu = fleet.cpuSeconds() - workerCpuBefore;
    const machineBusy = machineBusySeconds() - machineBefore;
    const producer = process.cpuUsage(producerBefore);
    const producerCpu = (producer.user + producer.system) / 1e6;

    // Exactly once, from three sides: the queue's own record of every job, what each worker
    // counted, and what the repository holds.
    const stored = await Promise.all(jobs.map((job) => client.queue.getJob(job.id!)));
    const violations: string[] = [];
    const notOnce = stored.filter((job) => !job || job.attemptsStarted !== 1 || job.attemptsMade !== 1 || !job.finishedOn || job.failedReason);
    if (notOnce.length) violations.push(`${notOnce.length} jobs not started and completed exactly once (e.g. ${notOnce[0]?.id}: attemptsStarted ${notOnce[0]?.attemptsStarted}, reason ${notOnce[0]?.failedReason})`);
    const ids = new Set(stored.map((job) => (job?.returnvalue as { id?: string } | undefined)?.id).filter(Boolean));
    if (ids.size !== options.jobs) violations.push(`${ids.size} distinct snapshots for ${options.jobs} jobs`);
    const outcomes = await fleet.outcomes();
    const completions = outcomes.reduce((sum, o) => sum + o.completed, 0);
    const failures = outcomes.reduce((sum, o) => sum + o.failed, 0);
    if (completions !== warmUp + options.jobs || failures) violations.push(`workers counted ${completions} completions and ${failures} failures for ${warmUp + options.jobs} jobs`);
    const snapshotDir = path.join(repo, 'snapshots');
    const records = existsSync(snapshotDir) ? readdirSync(snapshotDir).filter((id) => existsSync(path.join(snapshotDir, id, 'snapshot.json'))).length : 0;
    if (records !== warmUp + options.jobs) violations.push(`the repository holds ${records} snapshots for ${warmUp + options.jobs} jobs`);

    const lastFinished = Math.max(...stored.map((job) => job?.finishedOn ?? 0));
    const seconds = (lastFinished - started) / 1000;
    const ours = workerCpu + work.cpuSeconds + producerCpu;
    return {
      jobsPerSecond: options.jobs / seconds,
      workerCpu: workerCpu / options.jobs,
      redisCpu: work.cpuSeconds / options.jobs,
      producerCpu: producerCpu / options.jobs,
      coresBusy: ours / seconds,
      // Measured until the bench saw the last job done, a little after its finishedOn.
      othersBusy: Math.max(0, machineBusy - ours) / ((seenDone - started) / 1000),
      commandsPerJob: work.commands / options.jobs,
      scriptCallsPerJob: work.scriptCalls / options.jobs,
      violations,
    };
  } finally {
    await fleet.stop();
    await client.queue.obliterate({ force: true }).catch(() => {});
    await client.close();
    rmSync(repo, { recursive: true, force: true });
  }
}

/** CPU-seconds the whole machine has been busy (all cores, every process), from /proc/stat. */
function machineBusySeconds(): number {
  // cpu  user nice system idle iowait irq softirq steal …, in USER_HZ (100 per second).
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return (user + nice + system + irq + softirq + steal) / 100;
}

/**
 * The runs as a Markdown table: medians per setting, and whether every run was exactly once.
 * "CPU ceiling" is this machine's cores divided by the CPU-seconds one job took (workers, Redis
 * and producer together): the rate at which the cores would be full if nothing else ran.
 */
export function fleetTable(rows: FleetRow[]): string {
  const cores = os.cpus().length;
  const m = (runs: Measurement[], pick: (r: Measurement) => number) => median(runs.map(pick));
  const ms = (seconds: number) => (seconds * 1000).toFixed(2);
  return [
    `| Redis | worker processes | small jobs/s (median) | runs (jobs/s) | CPU ms/job: workers | Redis | producer | CPU ceiling, ${cores} cores (jobs/s) | cores busy: ours | others | Redis commands/job (script calls) | exactly once |`,
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((row) => {
      const bad = row.runs.flatMap((r) => r.violations);
      return (
        `| ${row.redis} | ${row.workers} | ${m(row.runs, (r) => r.jobsPerSecond).toFixed(0)} | ${row.runs.map((r) => r.jobsPerSecond.toFixed(0)).join(', ')} | ` +
        `${ms(m(row.runs, (r) => r.workerCpu))} | ${ms(m(row.runs, (r) => r.redisCpu))} | ${ms(m(row.runs, (r) => r.producerCpu))} | ` +
        `${m(row.runs, (r) => cores / (r.workerCpu + r.redisCpu + r.producerCpu)).toFixed(0)} | ` +
        `${m(row.runs, (r) => r.coresBusy).toFixed(2)} | ${m(row.runs, (r) => r.othersBusy).toFixed(2)} | ${m(row.runs, (r) => r.commandsPerJob).toFixed(0)} (${m(row.runs, (r) => r.scriptCallsPerJob).toFixed(1)}) | ` +
        `${bad.length ? `no: ${bad.join('; ')}` : 'yes'} |`
      );
    }),
  ].join('\n');
}
