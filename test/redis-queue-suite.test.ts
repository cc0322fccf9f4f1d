/**
 * The queue suite's main paths through each Redis deployment the workers support besides a
 * single server: a 3-master Redis Cluster and a master found through Sentinel. One set of servers
 * per deployment for the whole file, one queue (random name and hash-tag prefix) and one worker
 * process shared by the cases; the last case kills that worker. Failover runs are in
 * redis-cluster.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { closeConnection, toConnection } from '../jobs/redis-connection.js';
import { SnapworkerClient } from '../jobs/client.js';
import type { ProgressReport } from '../shared/progress.js';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { redisQueueEnvironment, startRedisCluster, startRedisSentinels, stopWorker, type RedisQueueEnvironment } from './helpers/redis-cluster.js';
import { writeRandomFile } from './helpers/tree.js';
import { eventually, spawnWorker, type WorkerProcess } from './helpers/worker-fixture.js';

/** Short locks, so a killed worker's job is found stalled within seconds. */
const FAST_STALL = { SNAPWORKER_LOCK_DURATION_MS: '3000', SNAPWORKER_STALLED_INTERVAL_MS: '1000' };

queueSuite('a 3-master Redis Cluster', () => startRedisCluster({ masters: 3 }));
queueSuite('a master found through Sentinel', () => startRedisSentinels());

function queueSuite(deployment: string, startRedis: () => Promise<{ url: string; stop(): Promise<void> }>): void {
  describe(`the queue on ${deployment}`, () => {
    let redis: { url: string; stop(): Promise<void> };
    let environment: RedisQueueEnvironment;
    let client: SnapworkerClient;
    let worker: WorkerProcess;
    // A second repository whose folder is blocked by a file until the retry test removes it.
    let blocker: string;

    before(async () => {
      redis = await startRedis();
      environment = await redisQueueEnvironment(redis.url);
      blocker = path.join(environment.root, 'blocked');
      const repositories = { default: `file://${path.join(environment.root, 'repo')}`, flaky: `file://${path.join(blocker, 'repo')}` };
      environment.env.SNAPWORKER_REPOSITORIES = JSON.stringify(repositories);
      client = environment.client();
      worker = spawnWorker(environment, { SNAPWORKER_CONCURRENCY: '1', ...FAST_STALL });
    });
    after(async () => {
      if (worker) await stopWorker(worker);
      await client?.queue.obliterate({ force: true }).catch(() => {});
      await client?.close();
      await environment?.cleanup();
      await redis?.stop();
    });

    it('snapshots, verifies, restores and prunes, with progress reaching the producer', async () => {
      const source = path.join(environment.root, 'src');
      await mkdir(source);
      await writeFile(path.join(source, 'a.txt'), 'alpha\n');
      await writeFile(path.join(source, 'b.bin'), randomBytes(3 << 20));
      const progress: ProgressReport[] = [];
      const record = await client.waitForResult<'snapshot'>(await client.enqueue('snapshot', { v: 1, source: `dir://${source}`, compression: 'none' }), {
        timeoutMs: 60_000,
        onProgress: (report) => progress.push(report),
      });
      assert.equal(record.source.kind, 'dir');
      assert.ok(progress.some((p) => p.bytesDone > 0), `progress with bytes reached the producer: ${JSON.stringify(progress)}`);

      const verified = await client.waitForResult<'verify'>(await client.enqueue('verify', { v: 1, snapshot: record.id }), { timeoutMs: 60_000 });
      assert.equal(verified.ok, true);
      const target = path.join(environment.root, 'restored');
      await client.waitForResult<'restore'>(await client.enqueue('restore', { v: 1, snapshot: record.id, target: `dir://${target}` }), { timeoutMs: 60_000 });
      assert.equal(await readFile(path.join(target, 'a.txt'), 'utf8'), 'alpha\n');
      const pruned = await client.waitForResult<'prune'>(await client.enqueue('prune', { v: 1, keepLast: 1 }), { timeoutMs: 60_000 });
      assert.deepEqual(pruned.kept, [record.id]);
    });

    it('retries a failed attempt after its backoff (through the delayed set) and fails bad input at once', async () => {
      await writeFile(blocker, 'a file where the repository folder should be\n');
      const source = path.join(environment.root, 'retried');
      await mkdir(source);
      await writeFile(path.join(source, 'r.txt'), 'retry me\n');
      const job = await client.queue.add('snapshot', { v: 1, source: `dir://${source}`, repo: 'flaky' }, { attempts: 3, backoff: { type: 'fixed', delay: 2000 } });
      await eventually('the first attempt to fail and wait for its retry', async () => (await job.getState()) === 'delayed', 30_000);
      await rm(blocker);
      const settled = await eventually('the retry to complete', async () => {
        const current = await client.queue.getJob(job.id!);
        return current?.finishedOn ? current : undefined;
      }, 60_000);
      assert.equal(await settled.getState(), 'completed', settled.failedReason);
      assert.ok(settled.attemptsStarted >= 2, `attempts started: ${settled.attemptsStarted}`);
      assert.match(settled.stacktrace?.[0] ?? '', /ENOTDIR/, 'the first attempt failed on the blocked folder');
      assert.equal((settled.returnvalue as SnapshotRecord).source.kind, 'dir');

      const invalid = await client.queue.add('snapshot', { v: 1, sorce: 'dir:///x' }, { attempts: 3, backoff: { type: 'fixed', delay: 100 } });
      const failed = await eventually('the invalid job to fail', async () => {
        const current = await client.queue.getJob(invalid.id!);
        return current?.finishedOn ? current : undefined;
      });
      assert.equal(await failed.getState(), 'failed');
      assert.equal(failed.attemptsMade, 1, 'bad input is not retried');
      assert.match(failed.failedReason, /sorce/);
    });

    it('runs jobs by priority, then in the order they came: a restore before a backlog of snapshots', async () => {
      const source = path.join(environment.root, 'backlog-src');
      await mkdir(source);
      await writeFile(path.join(source, 'x.txt'), 'x'.repeat(1000));
      const seed = await client.waitForResult<'snapshot'>(await client.enqueue('snapshot', { v: 1, source: `dir://${source}`, name: 'backlog' }), { timeoutMs: 60_000 });
      await client.queue.pause();
      const backlog: Job[] = [];
      for (let i = 0; i < 5; i++) backlog.push(await client.enqueue('snapshot', { v: 1, source: `dir://${source}`, name: 'backlog' }));
      const urgent = await client.enqueue('restore', { v: 1, snapshot: seed.id, target: `dir://${path.join(environment.root, 'urgent')}` });
      assert.ok(urgent.opts.priority! < backlog[0]!.opts.priority!, 'restores go before snapshots by default');
      await client.queue.resume();
      const order = await eventually('every job to finish', async () => {
        const jobs = await Promise.all([urgent, ...backlog].map((j) => client.queue.getJob(j.id!)));
        return jobs.every((j) => j?.finishedOn) ? jobs : undefined;
      }, 60_000);
      // One job at a time (concurrency 1): the order they started in is the order they were taken.
      const started = [...order].sort((a, b) => a!.processedOn! - b!.processedOn! || a!.finishedOn! - b!.finishedOn!).map((j) => j!.id);
      assert.deepEqual(started, [urgent, ...backlog].map((j) => j.id));
    });

    it('the keys the KEDA triggers read (wait, prioritized, active) count the jobs in each state', async () => {
      // A queue no snapworker worker serves: a BullMQ worker of our own takes one job (manual
      // processing), so the three states each hold a known number of jobs.
      const queue = new SnapworkerClient({ connection: redis.url, queueName: `${environment.queueName}-keda`, prefix: environment.prefix });
      // A Cluster instance is shared, not owned: BullMQ never closes it, so this test does.
      const takerConnection = toConnection(redis.url);
      const taker = new Worker(`${environment.queueName}-keda`, null, { connection: takerConnection, prefix: environment.prefix, autorun: false });
      try {
        // The producer's own connection (ioredis Redis or Cluster) reads the keys as KEDA would.
        const keys = (await queue.queue.client) as unknown as Pick<Redis, 'llen' | 'zcard'>;
        const jobs: Job[] = [];
        for (let i = 0; i < 3; i++) jobs.push(await queue.enqueue('snapshot', { v: 1, source: 'dir:///nonexistent' }, { priority: 0 }));
        for (let i = 0; i < 2; i++) jobs.push(await queue.enqueue('verify', { v: 1, snapshot: 'latest', source: 'x' }));
        assert.ok(await taker.getNextJob('keda-test-token', { block: false }), 'a job was taken');
        const states = await Promise.all(jobs.map((job) => job.getState()));
        const count = (state: string) => states.filter((s) => s === state).length;
        assert.equal(count('active'), 1, states.join(', '));
        assert.equal(count('waiting') + count('prioritized'), 4, states.join(', '));
        // The keys and types the chart's ScaledObject names (helm keda-scaledobject.yaml).
        const base = `${environment.prefix}:${environment.queueName}-keda`;
        assert.equal(await keys.llen(`${base}:wait`), count('waiting'));
        assert.equal(await keys.zcard(`${base}:prioritized`), count('prioritized'));
        assert.equal(await keys.llen(`${base}:active`), count('active'));
      } finally {
        await taker.close();
        await closeConnection(takerConnection);
        await queue.queue.obliterate({ force: true });
        await queue.close();
      }
    });

    it('takes over a job whose worker was killed (SIGKILL) mid-job: found stalled, run again by another worker, reporting progress, one snapshot', async () => {
      const source = path.join(environment.root, 'big');
      await mkdir(source);
      await writeRandomFile(path.join(source, 'big.bin'), 64 << 20);
      const job = await client.queue.add('snapshot', { v: 1, source: `dir://${source}`, name: 'killed', compression: 'gzip' }, { attempts: 1 });
      await eventually('the shared worker to start the job', async () => (await job.getState()) === 'active', 30_000);
      worker.child.kill('SIGKILL');
      await worker.exited;
      assert.deepEqual(completionLines(worker, job.id!), [], 'killed before it completed the job');

      const rescuer = spawnWorker(environment, FAST_STALL);
      worker = rescuer;
      const progress: ProgressReport[] = [];
      const record = await client.waitForResult<'snapshot'>(job, { timeoutMs: 120_000, onProgress: (report) => progress.push(report) });
      const finished = (await client.queue.getJob(job.id!))!;
      assert.ok(finished.stalledCounter >= 1, `the job was found stalled (stalledCounter ${finished.stalledCounter})`);
      assert.equal(completionLines(rescuer, job.id!).length, 1, 'the second worker completed it');
      assert.ok(progress.length > 0 && progress.every((p, i) => i === 0 || p.bytesDone >= progress[i - 1]!.bytesDone), `progress grows: ${JSON.stringify(progress)}`);
      const snapshots = path.join(environment.root, 'repo', 'snapshots');
      const killed = [];
      for (const id of await readdir(snapshots)) {
        const stored = JSON.parse(await readFile(path.join(snapshots, id, 'snapshot.json'), 'utf8')) as SnapshotRecord;
        if (stored.source.name === 'killed') killed.push(id);
      }
      assert.deepEqual(killed, [record.id], 'exactly one snapshot for the job');
      assert.deepEqual((await readdir(path.join(snapshots, record.id))).sort(), ['archive.tar.gz', 'entries.jsonl.zst', 'snapshot.json'], 'the second run replaced the partial archive');
    });
  });
}

/** The log lines in which a worker says it completed the job. */
function completionLines(worker: WorkerProcess, jobId: string): string[] {
  return worker.logs().split('\n').filter((line) => line.includes(`"jobId":"${jobId}"`) && line.includes('"msg":"job completed"'));
}
