import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Cluster } from 'ioredis';
import type { Job } from 'bullmq';
import { SnapworkerClient } from '../jobs/client.js';
import { parseRedisUrl, toConnection } from '../jobs/redis-connection.js';
import { cli } from './helpers/cli.js';
import {
  masterOfKey,
  redisQueueEnvironment,
  startRedisCluster,
  startRedisSentinels,
  stopWorker,
  type RedisQueueEnvironment,
  type TestRedisCluster,
  type TestRedisSentinels,
} from './helpers/redis-cluster.js';
import { eventually, spawnWorker } from './helpers/worker-fixture.js';

describe('Redis URLs', () => {
  it('reads one server, cluster seed nodes and Sentinels with a master, TLS and ACL users', () => {
    assert.deepEqual(parseRedisUrl('redis+cluster://app:p%40ss@10.0.0.1:7000,10.0.0.2'), {
      mode: 'cluster',
      nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 6379 }],
      auth: { username: 'app', password: 'p@ss' },
      tls: false,
    });
    assert.deepEqual(parseRedisUrl('rediss+sentinel://:pw@s1,s2:26380/mymaster/2?sentinelPassword=sp'), {
      mode: 'sentinel',
      sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }],
      master: 'mymaster',
      db: 2,
      auth: { password: 'pw' },
      sentinelAuth: { password: 'sp' },
      tls: true,
    });
    assert.deepEqual(toConnection('rediss://app:pw@cache:6380/1'), { host: 'cache', port: 6380, username: 'app', password: 'pw', db: 1, tls: {} });
  });

  it('refuses a malformed URL with one line that never shows the password', () => {
    for (const [url, why] of [
      ['http://:pw@x', /scheme must be one of/],
      ['redis://:pw@a:1,b:2', /exactly one server; use redis\+cluster/],
      ['redis+cluster://:pw@', /no seed nodes/],
      ['redis+cluster://:pw@a:1/3', /only database 0/],
      ['redis+sentinel://:pw@a:1', /no master name/],
      ['redis+cluster://:pw@a:99999', /"a:99999" is not host:port/],
      ['redis+sentinel://:pw@a/%E0%A4%A', /bad percent-encoding/],
    ] as const) {
      const err = captureError(() => parseRedisUrl(url));
      assert.match(err.message, why, url);
      assert.doesNotMatch(err.message, /pw|\n/, url);
    }
  });
});

// The main paths on a cluster (and through Sentinel) are in redis-queue-suite.test.ts.
describe('the queue on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  let environment: RedisQueueEnvironment;
  before(async () => {
    // Replicas too: the failover test kills a master and needs one to take over.
    cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
  });
  after(async () => {
    await environment?.cleanup();
    await cluster?.stop();
  });

  it('refuses at start a prefix without a hash tag, and a redis:// URL naming one node (worker and command line), each with one line', async () => {
    environment = await redisQueueEnvironment(cluster.url);
    const noTag = spawnWorker(environment, { SNAPWORKER_PREFIX: 'bull' });
    assert.equal(await noTag.exited, 2);
    assert.match(noTag.logs(), /SNAPWORKER_PREFIX="bull": on a Redis Cluster the prefix needs a hash tag such as \{snapworker\}.*CROSSSLOT/);

    const oneNode = spawnWorker(environment, { REDIS_URL: `redis://127.0.0.1:${cluster.nodes[0]!.port}` });
    assert.equal(await oneNode.exited, 2);
    const lines = oneNode.logs().trim().split('\n');
    assert.equal(lines.length, 1, oneNode.logs());
    assert.match(lines[0]!, /this server is a node of a Redis Cluster; connect with redis\+cluster:\/\//);

    assert.throws(() => new SnapworkerClient({ connection: cluster.url, prefix: 'bull' }), /hash tag/);

    // The command line too: it used to print `MOVED 13411 …` and exit 0.
    const enqueued = await cli(['snapshot', `dir://${environment.root}`], { ...environment.env, REDIS_URL: `redis://127.0.0.1:${cluster.nodes[0]!.port}` });
    assert.equal(enqueued.code, 2, enqueued.stderr);
    assert.match(enqueued.stderr.trim(), /^snapworker: redis redis:\/\/127\.0\.0\.1:\d+: this server is a node of a Redis Cluster; connect with redis\+cluster:\/\/[^\n]*$/);
  });

  it('completes every job once, one snapshot each, while the master owning the queue is killed and its replica takes over', async () => {
    // A queue and repository of its own: the repository is compared with this test's jobs.
    const environment = await redisQueueEnvironment(cluster.url);
    const worker = spawnWorker(environment, { SNAPWORKER_CONCURRENCY: '4', SNAPWORKER_LOCK_DURATION_MS: '5000', SNAPWORKER_STALLED_INTERVAL_MS: '2000' });
    const client = environment.client();
    try {
      const jobs = await enqueueSmallSnapshots(environment, client, 40);
      const owner = await masterOfKey(cluster, `${environment.prefix}:${environment.queueName}:wait`);
      await eventually('some jobs done', async () => (await client.queue.getCompletedCount()) >= 5);
      const doneBeforeKill = await client.queue.getCompletedCount();
      await owner.kill();
      assert.ok(doneBeforeKill < jobs.length, 'the master died while jobs were still to run');
      await eventually('every job completed', async () => (await client.queue.getCompletedCount().catch(() => 0)) === jobs.length, 60_000);
      assert.equal(await client.queue.getFailedCount(), 0);
      // Each job completed once in the queue, with its result, and left exactly one snapshot. A
      // job may have *run* twice: Redis replicates asynchronously, so a completion (or a lock) the
      // dead master acknowledged but had not yet sent to its replica is lost, and the job runs
      // again; its snapshot id is fixed per job, so the second run rewrites the same snapshot.
      const { results, stored } = await snapshotsOf(environment, client, jobs);
      assert.equal(results.filter(Boolean).length, jobs.length);
      assert.equal(new Set(results.map((r) => r!.id)).size, jobs.length, 'one snapshot id per job');
      assert.deepEqual(stored, results.map((r) => r!.id).sort(), 'the repository holds exactly the jobs\' snapshots');
      // The outage is logged per change of state, not per retry (which ran hundreds of times).
      const complaints = worker.logs().split('\n').filter((line) => /"level":(40|50)/.test(line));
      assert.ok(complaints.length <= 10, `${complaints.length} warnings and errors for one failover:\n${complaints.slice(0, 12).join('\n')}`);
    } finally {
      await client.close();
      await stopWorker(worker);
      await environment.cleanup();
    }
  });
});

// The main paths through Sentinel (and the cluster) are in redis-queue-suite.test.ts.
describe('the queue through Sentinel', () => {
  let sentinels: TestRedisSentinels;
  before(async () => {
    sentinels = await startRedisSentinels();
  });
  after(async () => {
    await sentinels?.stop();
  });

  it('completes every job once when the master dies and the Sentinel promotes the replica', async () => {
    const environment = await redisQueueEnvironment(sentinels.url);
    const worker = spawnWorker(environment, { SNAPWORKER_CONCURRENCY: '4', SNAPWORKER_LOCK_DURATION_MS: '5000', SNAPWORKER_STALLED_INTERVAL_MS: '2000' });
    const client = environment.client();
    try {
      const jobs = await enqueueSmallSnapshots(environment, client, 30);
      await eventually('some jobs done', async () => (await client.queue.getCompletedCount()) >= 5);
      const doneBeforeKill = await client.queue.getCompletedCount();
      await sentinels.master.kill();
      assert.ok(doneBeforeKill < jobs.length, 'the master died while jobs were still to run');
      await eventually('every job completed', async () => (await client.queue.getCompletedCount().catch(() => 0)) === jobs.length, 60_000);
      assert.equal(await client.queue.getFailedCount(), 0);
      const { results, stored } = await snapshotsOf(environment, client, jobs);
      assert.deepEqual(stored, results.map((r) => r!.id).sort(), 'one snapshot per job');
    } finally {
      await client.close();
      await stopWorker(worker);
      await environment.cleanup();
    }
  });
});

/** Enqueues `count` snapshots of a one-file directory, each its own lineage, for failover runs. */
async function enqueueSmallSnapshots(environment: RedisQueueEnvironment, client: SnapworkerClient, count: number): Promise<Job[]> {
  const source = path.join(environment.root, 'small');
  await mkdir(source, { recursive: true });
  await writeFile(path.join(source, 'f'), 'x');
  const jobs: Job[] = [];
  for (let i = 0; i < count; i++) jobs.push(await client.enqueue('snapshot', { v: 1, source: `dir://${source}`, name: `job-${i}`, compression: 'none' }));
  return jobs;
}

/** Each job's result (the snapshot record) and the snapshot ids the repository holds, sorted. */
async function snapshotsOf(environment: RedisQueueEnvironment, client: SnapworkerClient, jobs: readonly Job[]): Promise<{ results: ({ id: string } | undefined)[]; stored: string[] }> {
  const results = await Promise.all(jobs.map(async (job) => (await client.queue.getJob(job.id!))?.returnvalue as { id: string } | undefined));
  const stored = (await readdir(path.join(environment.root, 'repo', 'snapshots'))).sort();
  return { results, stored };
}

function captureError(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}
