import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { Queue, type Job } from 'bullmq';
import Database from 'better-sqlite3';
import type { Redis } from 'ioredis';
import { cancelChannel, cancelKey } from '../jobs/cancel-channel.js';
import { ScheduleBook } from '../jobs/schedules.js';
import { snapworkerArgs } from './helpers/compiled-cli.js';
import {
  EVENT_SCHEMA_PATH,
  REPO_ROOT,
  RULES_PATH,
  alertRules,
  alertSignals,
  dashboardQueries,
  freePort,
  promtoolBinary,
  run,
  startPrometheus,
  startRestartableNats,
  substituteGrafanaVariables,
  waitFor,
  type RestartableServer,
} from './helpers/observability.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const WORKERS = 2;

interface WorkerProcess {
  port: number;
  child: ChildProcess;
  log: () => string;
}

/** Starts `snapworker worker` as a child process, as an operator would, and waits for /metrics. */
async function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, snapworkerArgs('worker'), {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, SNAPWORKER_METRICS_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (chunk: Buffer): void => {
    log = (log + chunk.toString()).slice(-8000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  await waitFor(`worker on port ${port}`, async () => {
    if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}: ${log}`);
    return fetch(`http://127.0.0.1:${port}/metrics`).then((response) => response.ok, () => false);
  }, 30_000);
  return { port, child, log: () => log };
}

async function stopWorkerProcess(worker: WorkerProcess): Promise<void> {
  if (worker.child.exitCode !== null || worker.child.signalCode !== null) return;
  const exited = new Promise((resolve) => worker.child.once('exit', resolve));
  worker.child.kill('SIGTERM');
  const timer = setTimeout(() => worker.child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

interface QueryResult {
  status: string;
  error?: string;
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

async function promQuery(prometheus: RestartableServer, expr: string): Promise<QueryResult> {
  const response = await fetch(`${prometheus.url}/api/v1/query?${new URLSearchParams({ query: expr })}`);
  return (await response.json()) as QueryResult;
}

async function promValue(prometheus: RestartableServer, expr: string): Promise<number | undefined> {
  const result = await promQuery(prometheus, expr);
  const first = result.data?.result[0];
  return first === undefined ? undefined : Number(first.value[1]);
}

async function waitUntilFinished(queue: Queue, jobs: Job[], timeoutMs = 60_000): Promise<Record<string, string>> {
  const states: Record<string, string> = {};
  await waitFor(`${jobs.length} jobs to finish`, async () => {
    for (const job of jobs) states[job.id!] = await queue.getJobState(job.id!);
    return Object.values(states).every((state) => state === 'completed' || state === 'failed');
  }, timeoutMs);
  return states;
}

describe('observability end to end: two workers, Prometheus, NATS', () => {
  let dir: string;
  let source: string;
  let nats: RestartableServer;
  let prometheus: RestartableServer & { dir: string };
  let queue: Queue;
  let subscriber: NatsConnection;
  const messages: Msg[] = [];
  const workers: WorkerProcess[] = [];
  let firstJobs: Job[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snapworker-e2e-'));
    source = join(dir, 'src');
    await mkdir(join(source, 'nested'), { recursive: true });
    for (let i = 0; i < 16; i++) await writeFile(join(source, i % 2 ? 'nested' : '', `file-${i}.bin`), randomBytes(256 * 1024));
    nats = await startRestartableNats();
    subscriber = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const subscription = subscriber.subscribe('snapworker.jobs.>');
    void (async () => {
      for await (const message of subscription) messages.push(message);
    })();
    await subscriber.flush();

    const queueName = `e2e-${randomUUID()}`;
    queue = new Queue(queueName, { connection: { host: '127.0.0.1', port: 6379 } });
    const env = {
      REDIS_URL,
      SNAPWORKER_QUEUE: queueName,
      SNAPWORKER_REPOSITORIES: JSON.stringify({ default: `file://${join(dir, 'repo')}` }),
      SNAPWORKER_ALLOWED_PATHS: dir,
      NATS_URL: nats.url,
    };
    // A schedule with a recorded failure and success, before the workers start: their first sample carries
    // the schedule series (a yearly cron never fires during the test).
    const schedules = new ScheduleBook(queue);
    await schedules.put({ v: 1, name: 'e2e-yearly', cron: '0 0 1 1 *', job: { v: 1, source: `dir://${source}` } });
    await schedules.recordRun('e2e-yearly', { at: new Date(Date.now() - 60_000).toISOString(), result: 'failed', jobId: 'e2e-1', error: 'test' });
    await schedules.recordRun('e2e-yearly', { at: new Date().toISOString(), result: 'succeeded', jobId: 'e2e-2' });
    for (let i = 0; i < WORKERS; i++) workers.push(await startWorkerProcess(env));
    prometheus = await startPrometheus({
      scrapeTargets: workers.map((worker) => `127.0.0.1:${worker.port}`),
      ruleFiles: [RULES_PATH],
    });
  });

  after(async () => {
    await Promise.all(workers.map(stopWorkerProcess));
    await prometheus?.dispose();
    await subscriber?.close();
    await nats?.dispose();
    if (queue) {
      await queue.obliterate({ force: true });
      await queue.close();
    }
    await rm(dir, { recursive: true, force: true });
  });

  test('jobs on two workers are scraped, and every dashboard query and alert signal returns data', async (t) => {
    firstJobs = [];
    for (let i = 0; i < 6; i++) firstJobs.push(await queue.add('snapshot', { v: 1, source: `dir://${source}` }, { priority: 10 }));
    firstJobs.push(await queue.add('snapshot', { v: 1, source: `dir://${join(dir, 'missing')}` }, { priority: 10 }));
    const states = await waitUntilFinished(queue, firstJobs).catch((err: unknown) => {
      t.diagnostic(workers.map((worker) => worker.log()).join('\n---\n'));
      throw err;
    });
    assert.equal(Object.values(states).filter((state) => state === 'completed').length, 6, JSON.stringify(states));
    assert.equal(states[firstJobs.at(-1)!.id!], 'failed');
    // A restore and a verify of one snapshot, so the restore and verify series carry data too.
    const snapshotId = ((await queue.getJob(firstJobs[0]!.id!))!.returnvalue as { id: string }).id;
    const restored = join(dir, 'restored');
    const followUps = [
      await queue.add('restore', { v: 1, snapshot: snapshotId, target: `dir://${restored}` }, { priority: 1 }),
      await queue.add('verify', { v: 1, snapshot: snapshotId }, { priority: 1 }),
    ];
    assert.deepEqual(Object.values(await waitUntilFinished(queue, followUps)), ['completed', 'completed']);
    assert.deepEqual(await readFile(join(restored, 'nested', 'file-1.bin')), await readFile(join(source, 'nested', 'file-1.bin')));
    firstJobs.push(...followUps);

    // A replicator, so the replication series carry data; stopped (cancelled) at the end.
    const replicated = join(dir, 'replicated.db');
    const database = new Database(replicated);
    database.pragma('journal_mode = WAL');
    database.exec('CREATE TABLE t (x)');
    database.close();
    await queue.add('replicate', { v: 1, source: `sqlite://${replicated}` }, { jobId: 'replicate.default.replicated', priority: 2 });
    await waitFor('the replicator to ship', async () => ((await promValue(prometheus, 'count(snapworker_replication_wal_offset_bytes)')) ?? 0) >= 1, 60_000);
    t.after(() => cancelJob(queue, 'replicate.default.replicated'));

    await waitFor('Prometheus to scrape both workers and the finished jobs', async () =>
      (await promValue(prometheus, 'count(up{job="snapworker"} == 1)')) === WORKERS &&
      (await promValue(prometheus, 'sum(snapworker_jobs_total{outcome="completed"})')) === 8 &&
      (await promValue(prometheus, 'sum(snapworker_jobs_total{outcome="failed"})')) === 1,
    30_000);
    // Rates need two samples in their window; a worker's first scrape may be recent.
    await waitFor('three samples of every series in the rate window', async () =>
      ((await promValue(prometheus, 'min(count_over_time(snapworker_jobs_total[30s]))')) ?? 0) >= 3 &&
      ((await promValue(prometheus, 'min(count_over_time(snapworker_replication_generations_total[30s]))')) ?? 0) >= 3,
    30_000);
    assert.equal(await promValue(prometheus, 'count(snapworker_worker_info)'), WORKERS);

    const empty: string[] = [];
    for (const { panel, expr } of await dashboardQueries()) {
      const result = await promQuery(prometheus, substituteGrafanaVariables(expr, '30s'));
      assert.equal(result.status, 'success', `panel "${panel}": ${result.error} (${expr})`);
      if (result.data!.result.length === 0) empty.push(`panel "${panel}": ${expr}`);
    }
    for (const { alert, expr } of await alertRules()) {
      const whole = await promQuery(prometheus, expr);
      assert.equal(whole.status, 'success', `${alert}: ${whole.error}`);
      for (const signal of alertSignals(expr)) {
        const result = await promQuery(prometheus, signal);
        assert.equal(result.status, 'success', `${alert}: ${result.error} (${signal})`);
        if (result.data!.result.length === 0) empty.push(`${alert}: ${signal}`);
      }
    }
    assert.deepEqual(empty, [], 'queries without data');

    const rules = (await (await fetch(`${prometheus.url}/api/v1/rules`)).json()) as {
      data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> };
    };
    const loaded = rules.data.groups.flatMap((group) => group.rules);
    assert.equal(loaded.length, (await alertRules()).length);
    for (const rule of loaded) assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError}`);
  });

  test('a subscriber to snapworker.jobs.> sees started, progress and completed or failed for every job, each payload schema-valid', async () => {
    const ajv = new Ajv2020({ strict: true });
    (addFormats as unknown as (ajv: Ajv2020) => void)(ajv);
    const validate = ajv.compile(JSON.parse(await readFile(EVENT_SCHEMA_PATH, 'utf8')));
    const payloads = messages.map((message) => ({ subject: message.subject, payload: message.json<Record<string, unknown>>() }));
    for (const { subject, payload } of payloads) assert.ok(validate(payload), `${subject}: ${JSON.stringify(validate.errors)}`);
    for (const job of firstJobs) {
      const seen = new Set(payloads.filter(({ payload }) => payload.jobId === job.id).map(({ payload }) => payload.event));
      const state = await queue.getJobState(job.id!);
      assert.ok(seen.has('started'), `job ${job.id}: ${[...seen]}`);
      if (state === 'completed') {
        assert.ok(seen.has('progress') && seen.has('completed'), `job ${job.id}: ${[...seen]}`);
      } else {
        assert.ok(seen.has('failed'), `job ${job.id}: ${[...seen]}`);
      }
    }
  });

  test('with NATS stopped mid-run every job still completes and the dropped events show in the metric', async () => {
    await nats.stop();
    const jobs: Job[] = [];
    for (let i = 0; i < 4; i++) jobs.push(await queue.add('snapshot', { v: 1, source: `dir://${source}` }, { priority: 10 }));
    const states = await waitUntilFinished(queue, jobs);
    assert.deepEqual(Object.values(states), ['completed', 'completed', 'completed', 'completed']);

    let scraped = 0;
    for (const worker of workers) {
      const text = await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text();
      scraped += Number(/^snapworker_events_dropped_total (\S+)$/m.exec(text)?.[1] ?? 0);
      const lint = await run(promtoolBinary(), ['check', 'metrics'], { input: text });
      assert.equal(lint.code, 0, `promtool check metrics on a worker's /metrics: ${lint.output}`);
    }
    // started + at least one progress + completed per job, none of which could go out.
    assert.ok(scraped >= jobs.length * 3, `only ${scraped} dropped events counted`);
    await waitFor('Prometheus to see the drops', async () => ((await promValue(prometheus, 'sum(snapworker_events_dropped_total)')) ?? 0) >= scraped, 15_000);
  });
});

/** Cancels a running job the way `job cancel` does (cancel key, then the queue's cancel channel). */
async function cancelJob(queue: Queue, jobId: string): Promise<void> {
  const redis = (await queue.client) as unknown as Pick<Redis, 'publish' | 'set'>;
  await redis.set(cancelKey('bull', queue.name, jobId), '1', 'EX', 60);
  await redis.publish(cancelChannel('bull', queue.name), jobId);
}
