import assert from 'node:assert/strict';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SnapworkerClient } from '../jobs/client.js';
import { ScheduleBook } from '../jobs/schedules.js';
import type { ScheduleDefinition } from '../jobs/schemas.js';
import { Repository } from '../shared/catalog/repository.js';
import { InvalidInputError, NotFoundError } from '../shared/errors.js';
import { FsDriver } from '../shared/storage/fs/fs-driver.js';
import { connect } from '@nats-io/transport-node';
import { WorkerMetrics } from '../shared/metrics/metrics.js';
import { sampleSchedules } from '../shared/metrics/queue-sampler.js';
import { cli } from './helpers/cli.js';
import { startScheduleFileReconciler } from '../worker/schedule-file.js';
import type { Logger } from '../shared/logging.js';
import { createTestEnvironment, eventually, REDIS_URL, spawnWorker, type TestEnvironment, type WorkerProcess } from './helpers/worker-fixture.js';
import { isDeepStrictEqual } from 'node:util';

async function stopProcess(worker: WorkerProcess): Promise<void> {
  if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGTERM');
  await worker.exited;
}

describe('schedules on BullMQ job schedulers', () => {
  let environment: TestEnvironment;
  let book: ScheduleBook;
  let source: string;
  before(async () => {
    environment = await createTestEnvironment();
    book = new ScheduleBook(environment.queue);
    source = path.join(environment.root, 'src');
    await mkdir(source, { recursive: true });
    await writeFile(path.join(source, 'a.txt'), 'scheduled');
  });
  after(async () => {
    await environment.cleanup();
  });

  const nightly = (name: string): ScheduleDefinition => ({
    v: 1,
    name,
    cron: '0 3 * * *',
    tz: 'Europe/Prague',
    job: { v: 1, source: `dir://${source}`, name: 'app', labels: { app: 'shop' } },
    retention: { keepDaily: 7, keepWeekly: 4, keepMonthly: 12 },
  });

  it('adds, shows, lists, pauses, resumes, runs now and removes a schedule', async () => {
    await book.put(nightly('nightly'));
    const shown = await book.get('nightly');
    assert.equal(shown.definition.cron, '0 3 * * *');
    // The next 03:00 in Prague is 01:00 or 02:00 UTC, depending on DST.
    const next = new Date(shown.nextRunAt!);
    assert.ok(next.getTime() > Date.now() && next.getTime() <= Date.now() + 86_400_000, `next run ${next.toISOString()}`);
    assert.ok([1, 2].includes(next.getUTCHours()) && next.getUTCMinutes() === 0, `next run ${next.toISOString()}`);
    const scheduler = await environment.queue.getJobScheduler('nightly');
    assert.deepEqual(scheduler?.template?.data, {
      v: 1,
      source: `dir://${source}`,
      name: 'app',
      labels: { app: 'shop' },
      schedule: { name: 'nightly', retention: { keepDaily: 7, keepWeekly: 4, keepMonthly: 12, tz: 'Europe/Prague' } },
    });

    // Metrics: the schedule name is the only label; no last success yet, so no such series.
    const metrics = new WorkerMetrics({ version: 'test' });
    await book.recordRun('nightly', { at: '2026-11-29T02:00:05.000Z', result: 'failed', jobId: 'x', error: 'disk full' });
    await sampleSchedules(book, metrics);
    const text = await metrics.metrics();
    assert.match(text, /^snapworker_schedule_interval_seconds\{schedule="nightly"\} 86400$/m);
    assert.match(text, new RegExp(`^snapworker_schedule_next_run_timestamp_seconds\\{schedule="nightly"\\} ${next.getTime() / 1000}$`, 'm'));
    assert.match(text, /^snapworker_schedule_last_failure_timestamp_seconds\{schedule="nightly"\} 1795917605$/m);
    assert.doesNotMatch(text, /^snapworker_schedule_last_success_timestamp_seconds\{/m);
    assert.equal((await book.get('nightly')).lastRun?.error, 'disk full');

    await book.pause('nightly');
    assert.equal(await environment.queue.getJobScheduler('nightly'), undefined, 'a paused schedule creates no runs');
    const paused = await book.list();
    assert.deepEqual(paused.map((s) => [s.definition.name, s.definition.paused, s.nextRunAt]), [['nightly', true, undefined]]);
    await book.resume('nightly');
    assert.ok((await book.get('nightly')).nextRunAt);

    const jobId = await book.runNow('nightly');
    const job = await environment.queue.getJob(jobId);
    assert.equal(job?.name, 'snapshot');
    assert.equal((job?.data as { schedule: { name: string } }).schedule.name, 'nightly');
    await job!.remove();

    await book.remove('nightly');
    assert.deepEqual(await book.list(), []);
    assert.equal(await environment.queue.getJobScheduler('nightly'), undefined);
    await assert.rejects(book.get('nightly'), NotFoundError);
  });

  it('is there for producers as client.schedule() and client.schedules', async () => {
    const client = new SnapworkerClient({ connection: REDIS_URL, queueName: environment.queueName });
    try {
      const stored = await client.schedule({ v: 1, name: 'from-client', every: '1h', job: { v: 1, source: `dir://${source}` }, retention: { keepLast: 3 } });
      assert.equal(stored.name, 'from-client');
      assert.deepEqual((await client.schedules.list()).map((s) => [s.definition.name, s.intervalSeconds]), [['from-client', 3600]]);
      await client.schedules.remove('from-client');
    } finally {
      await client.close();
    }
  });

  it('refuses a bad schedule in one line naming the problem, and changes nothing', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ ...nightly('bad'), cron: 'not a cron' }, /cron "not a cron" is invalid/],
      [{ ...nightly('bad'), every: '1h' }, /exactly one of cron and every/],
      [{ ...nightly('bad'), cron: undefined, every: '0s' }, /field "every": at least 1s/],
      [{ ...nightly('bad'), tz: 'Mars/Olympus' }, /field "tz"/],
      [{ ...nightly('bad:name') }, /field "name"/],
      [{ ...nightly('bad'), retention: { keepDaily: 'seven' } }, /field "retention.keepDaily"/],
      [{ ...nightly('bad'), job: { v: 1, source: 'dir:///x', colour: 'red' } }, /unknown field\(s\) colour/],
    ];
    for (const [definition, message] of cases) {
      await assert.rejects(book.put(definition as ScheduleDefinition), (err: unknown) => {
        return err instanceof InvalidInputError && message.test(err.message) && !err.message.includes('\n');
      });
    }
    assert.deepEqual(await book.list(), []);
    assert.deepEqual(await environment.queue.getJobSchedulers(), []);
  });

  it('works from the command line: schedule add, ls, show, pause, resume, run, rm, and one line for bad input', async () => {
    const env = environment.env;
    const add = await cli(['schedule', 'add', 'cli-nightly', `dir://${source}`, '--cron', '0 3 * * *', '--tz', 'Europe/Prague', '--keep', 'keep-daily=7,keep-weekly=4', '--label', 'app=shop'], env);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /^schedule cli-nightly added; next run \d{4}-\d\d-\d\dT0[12]:00:00Z$/m);
    const ls = await cli(['schedule', 'ls'], env);
    assert.match(ls.stdout, /^NAME\s+WHEN\s+NEXT RUN\s+LAST RUN\s+LAST RESULT$/m);
    assert.match(ls.stdout, /^cli-nightly\s+0 3 \* \* \* \(Europe\/Prague\)\s+\S+Z\s+-\s+-$/m);
    const show = JSON.parse((await cli(['schedule', 'show', 'cli-nightly'], env)).stdout);
    assert.deepEqual(show.definition.retention, { keepDaily: 7, keepWeekly: 4 });
    assert.deepEqual(show.definition.job.labels, { app: 'shop' });
    assert.equal((await cli(['schedule', 'pause', 'cli-nightly'], env)).code, 0);
    assert.match((await cli(['schedule', 'ls'], env)).stdout, /^cli-nightly\s+.*\s+paused\s/m);
    assert.match((await cli(['schedule', 'resume', 'cli-nightly'], env)).stdout, /resumed; next run/);
    const run = await cli(['schedule', 'run', 'cli-nightly'], env);
    assert.match(run.stdout, /^schedule-cli-nightly-\d+$/m);
    await (await environment.queue.getJob(run.stdout.trim()))?.remove();
    assert.equal((await cli(['schedule', 'rm', 'cli-nightly'], env)).code, 0);
    assert.equal((await cli(['schedule', 'ls', '--json'], env)).stdout.trim(), '[]');

    for (const [args, message] of [
      [['schedule', 'add', 'x', `dir://${source}`, '--cron', '0 3 * * *', '--every', '1h'], /exactly one of --cron and --every/],
      [['schedule', 'add', 'x', `dir://${source}`, '--cron', '61 3 * * *'], /cron "61 3 \* \* \*" is invalid/],
      [['schedule', 'add', 'x', `dir://${source}`, '--every', '1h', '--keep', 'keep-dialy=7'], /prune policy: "keep-dialy=7"/],
      [['schedule', 'add', 'x', `dir://${source}`, '--every', '1h', '--wait'], /--wait/],
    ] as const) {
      const result = await cli([...args], env);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    }
    assert.equal((await cli(['schedule', 'show', 'nope'], env)).code, 1);
    assert.deepEqual(await book.list(), []);
  });

  it('fires once per slot across 3 worker processes: no duplicate snapshot, no gap, lineage pruned after each run', async () => {
    const nats = await connect({ servers: 'nats://127.0.0.1:4222' });
    const events: Array<{ event: string; jobId: string; schedule?: string }> = [];
    const subscription = nats.subscribe('snapworker.jobs.>', {
      callback: (_err, msg) => {
        const event = msg.json<{ event: string; jobId: string; schedule?: string }>();
        if (event.jobId.startsWith('repeat:every-second:')) events.push(event);
      },
    });
    await nats.flush();
    const workerEnv = { NATS_URL: 'nats://127.0.0.1:4222' };
    const workers = [spawnWorker(environment, workerEnv), spawnWorker(environment, workerEnv), spawnWorker(environment, workerEnv)];
    try {
      await eventually('3 workers connected', async () => (await environment.queue.getWorkers()).length === 3, 60_000);
      await book.put({ v: 1, name: 'every-second', every: '1s', job: { v: 1, source: `dir://${source}`, name: 'tick' }, retention: { keepLast: 3 } });
      await new Promise((resolve) => setTimeout(resolve, 12_000));
      const running = await book.get('every-second');
      assert.equal(running.lastRun?.result, 'succeeded');
      assert.ok(running.lastRun?.snapshotId && running.lastRun.lastSuccessAt && running.nextRunAt);
      await book.remove('every-second');
      await eventually('the runs to finish', async () => (await environment.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).active === 0, 30_000);
      const counts = await environment.queue.getJobCounts('waiting', 'delayed', 'prioritized', 'active');
      assert.equal(counts.active, 0);

      const jobs = (await environment.queue.getJobs(['completed', 'failed'])).filter((j) => j.id?.startsWith('repeat:every-second:'));
      const failed = jobs.filter((j) => j.failedReason);
      assert.deepEqual(failed.map((j) => j.failedReason), [], 'no run failed');
      const slots = jobs.map((j) => Number(j.id!.split(':').at(-1))).sort((a, b) => a - b);
      assert.ok(slots.length >= 10, `${slots.length} runs in 12 s`);
      assert.equal(new Set(slots).size, slots.length, 'one job per slot');
      for (let i = 1; i < slots.length; i++) assert.equal(slots[i]! - slots[i - 1]!, 1000, `gap between ${slots[i - 1]} and ${slots[i]}`);
      const snapshotIds = jobs.map((j) => (j.returnvalue as { id: string }).id);
      assert.equal(new Set(snapshotIds).size, snapshotIds.length, 'no duplicate snapshot ids');
      const workersUsed = workers.filter((w) => w.logs().includes('repeat:every-second:')).length;
      assert.ok(workersUsed >= 2, `runs spread over ${workersUsed} worker(s)`);

      // keepLast 3 after every run: the newest complete snapshot always survives, every record has its archive.
      const repository = new Repository('default', new FsDriver({ root: environment.repoDir }));
      const listed = await repository.list({ source: 'tick' });
      const newest = snapshotIds.sort().at(-1);
      assert.ok(listed.length >= 1 && listed.length <= 3 + 2, `${listed.length} snapshots left`);
      assert.equal(listed.at(-1)?.id, newest);
      for (const record of listed) await repository.head(record.archive!.key);

      // Every run announced its start and its end on NATS, naming the schedule.
      await eventually('the last events', () => events.filter((e) => e.event === 'completed').length >= jobs.length, 10_000);
      for (const job of jobs) {
        const seen = events.filter((e) => e.jobId === job.id).map((e) => `${e.event}:${e.schedule}`);
        assert.ok(seen.includes('started:every-second') && seen.includes('completed:every-second'), `${job.id}: ${seen.join(', ')}`);
      }
    } finally {
      await Promise.all(workers.map(stopProcess));
      subscription.unsubscribe();
      await nats.close();
    }
  });

  it('loses no slot when a worker running a scheduled snapshot is SIGKILLed: the stalled run is taken over', async () => {
    // Short locks so the stalled check takes the job back within seconds (defaults: 30 s).
    const workerEnv = { SNAPWORKER_LOCK_DURATION_MS: '2000', SNAPWORKER_STALLED_INTERVAL_MS: '1000' };
    const workers = [spawnWorker(environment, workerEnv), spawnWorker(environment, workerEnv)];
    try {
      await eventually('2 workers connected', async () => (await environment.queue.getWorkers()).length === 2, 60_000);
      await book.put({ v: 1, name: 'survives-kill', every: '1s', job: { v: 1, source: `dir://${source}`, name: 'kill' } });
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      workers[0]!.child.kill('SIGKILL');
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      await book.remove('survives-kill');
      await eventually(
        'every run finished',
        async () => {
          const counts = await environment.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
          return counts.waiting + counts.active + counts.delayed + counts.prioritized === 0;
        },
        30_000,
      );
      const jobs = (await environment.queue.getJobs(['completed', 'failed'])).filter((j) => j.id?.startsWith('repeat:survives-kill:'));
      assert.deepEqual(jobs.filter((j) => j.failedReason).map((j) => `${j.id}: ${j.failedReason}`), []);
      const slots = jobs.map((j) => Number(j.id!.split(':').at(-1))).sort((a, b) => a - b);
      assert.ok(slots.length >= 8, `${slots.length} runs in 10 s`);
      for (let i = 1; i < slots.length; i++) assert.equal(slots[i]! - slots[i - 1]!, 1000, `gap between ${slots[i - 1]} and ${slots[i]}`);
      const ids = jobs.map((j) => (j.returnvalue as { id: string }).id);
      assert.equal(new Set(ids).size, ids.length, 'no duplicate snapshot ids');
    } finally {
      await Promise.all(workers.map(stopProcess));
    }
  });
});

describe('declarative schedules from a file (the chart\'s ConfigMap)', () => {
  let environment: TestEnvironment;
  let book: ScheduleBook;
  before(async () => {
    environment = await createTestEnvironment();
    book = new ScheduleBook(environment.queue);
  });
  after(async () => {
    await environment.cleanup();
  });

  it('adds, changes and removes only the schedules it manages, and leaves the file\'s mistakes and others\' schedules alone', async () => {
    const job = { v: 1 as const, source: `dir://${environment.root}/src`, name: 'app' };
    await book.put({ v: 1, name: 'by-hand', every: '1h', job });
    await book.put({ v: 1, name: 'billing', every: '1d', job, managedBy: 'billing-service' });
    const file = path.join(environment.root, 'schedules.json');
    // Atomically, as the kubelet updates a mounted ConfigMap (a half-written file is only a parse error until the next poll).
    const write = async (entries: unknown[]) => {
      await writeFile(`${file}.tmp`, JSON.stringify(entries));
      await rename(`${file}.tmp`, file);
    };
    const lines: string[] = [];
    const record = (level: string) => (fields: unknown, message?: string) => lines.push(`${level} ${message ?? ''} ${JSON.stringify(fields)}`);
    const logger = { info: record('info'), warn: record('warn'), error: record('error') } as unknown as Logger;
    const managed = async () =>
      Object.fromEntries((await book.list()).map((s) => [s.definition.name, [s.definition.managedBy ?? '-', s.definition.cron ?? s.definition.every]]));

    await write([
      { name: 'nightly', cron: '0 3 * * *', tz: 'Europe/Prague', job, retention: { keepDaily: 7 } },
      { name: 'hourly', every: '1h', job },
    ]);
    const reconciler = await startScheduleFileReconciler({ file, book, logger, intervalMs: 100 });
    try {
      assert.deepEqual(await managed(), {
        billing: ['billing-service', '1d'],
        'by-hand': ['-', '1h'],
        hourly: ['helm', '1h'],
        nightly: ['helm', '0 3 * * *'],
      });

      await write([
        { name: 'nightly', cron: '30 2 * * *', tz: 'Europe/Prague', job, retention: { keepDaily: 7 } },
        { name: 'weekly', cron: '0 4 * * 0', job },
        { name: 'by-hand', every: '5m', job },
      ]);
      const changed = {
        billing: ['billing-service', '1d'],
        'by-hand': ['-', '1h'],
        nightly: ['helm', '30 2 * * *'],
        weekly: ['helm', '0 4 * * 0'],
      };
      // One pass adds, changes and removes in turn: wait for the whole pass, not its first step.
      await eventually('the change reconciled', async () => isDeepStrictEqual(await managed(), changed));
      assert.deepEqual(await managed(), changed);
      assert.equal(await environment.queue.getJobScheduler('hourly'), undefined);
      assert.ok(lines.some((l) => l.startsWith('warn') && l.includes('by-hand')), 'the name conflict is logged');

      const before = await managed();
      await write([{ name: 'nightly', cron: '30 2 * * *', job, retention: { keepDaily: 'seven' } }]);
      await eventually('the bad file reported', () => lines.some((l) => l.startsWith('error') && l.includes('retention.keepDaily')));
      assert.deepEqual(await managed(), before, 'an invalid file changes nothing');
      const error = lines.find((l) => l.startsWith('error') && l.includes('retention.keepDaily'))!;
      assert.match(error, /^error schedules file \S*schedules\.json: schedules: entry nightly: field "retention\.keepDaily": .*; schedules unchanged /);
      await writeFile(file, '[{"name": ');
      await eventually('the broken file reported', () => lines.some((l) => /^error schedules file \S*schedules\.json: not JSON: /.test(l)));
      assert.deepEqual(await managed(), before, 'a broken file changes nothing');

      await write([]);
      const others = { billing: ['billing-service', '1d'], 'by-hand': ['-', '1h'] };
      await eventually('every managed schedule removed', async () => isDeepStrictEqual(await managed(), others));
      assert.deepEqual(await managed(), others);
    } finally {
      await reconciler.stop();
    }
  });
});
