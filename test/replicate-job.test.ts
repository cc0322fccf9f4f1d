/**
 * The `replicate` job end to end: real worker processes (the CLI's `worker`), real Redis, NATS
 * and SQLite files, a writer doing numbered transactions the whole time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { FsDriver } from '../shared/storage/fs/fs-driver.js';
import { Repository } from '../shared/catalog/repository.js';
import { ReplicaStore } from '../shared/kinds/sqlite/replication/replica-store.js';
import { restoreReplica } from '../shared/kinds/sqlite/replication/restore-replica.js';
import { runReplicateJob } from '../shared/kinds/sqlite/replication/replicate-job.js';
import { jobEventSubject } from '../shared/events/job-event-subject.js';
import type { JobReplicationEvent } from '../shared/events/job-events.js';
import type { ReplicatorListing } from '../worker/commands/replicate-commands.js';
import { cli } from './helpers/cli.js';
import { assertPrefix, wholeTransactions } from './helpers/sqlite-transactions.js';
import { createTestEnvironment, eventually, spawnWorker, type TestEnvironment, type WorkerProcess } from './helpers/worker-fixture.js';

const WRITER_SCRIPT = fileURLToPath(new URL('./helpers/sqlite-writer.ts', import.meta.url));
const JOB_ID = 'replicate.default.app';

type Listing = ReplicatorListing;

let environment: TestEnvironment;
let nats: NatsConnection;
const workers: WorkerProcess[] = [];
let writer: ChildProcess | undefined;

before(async () => {
  // Short locks and stalled checks, so a SIGKILLed worker's replicator is taken over in seconds.
  environment = await createTestEnvironment({
    SNAPWORKER_LOCK_DURATION_MS: '3000',
    SNAPWORKER_STALLED_INTERVAL_MS: '1000',
    NATS_URL: 'nats://127.0.0.1:4222',
    SNAPWORKER_AUTO_INIT: 'true',
  });
  nats = await connect({ servers: 'nats://127.0.0.1:4222' });
});

after(async () => {
  writer?.kill('SIGKILL');
  for (const worker of workers) worker.child.kill('SIGKILL');
  await Promise.all(workers.map((worker) => worker.exited));
  await nats.close();
  await environment.cleanup();
});

function run(args: string[]) {
  return cli(args, environment.env);
}

async function listReplicators(): Promise<Listing[]> {
  const result = await run(['replicate', 'ls', '--json']);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as Listing[];
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

/** A worker process whose pid its replication status carries, with its metrics on a known port. */
async function startWorker(): Promise<{ worker: WorkerProcess; port: number }> {
  const port = await freePort();
  const worker = spawnWorker(environment, { SNAPWORKER_METRICS_PORT: String(port) });
  workers.push(worker);
  await eventually('the worker to be ready', async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok, 180_000);
  return { worker, port };
}

describe('replicate job', () => {
  it('runs on a worker, moves to another within the stalled interval after a SIGKILL without a gap, is listed, and stops', async () => {
    const dbPath = path.join(environment.root, 'app.db');
    writer = spawn(process.execPath, ['--import', 'tsx', WRITER_SCRIPT, dbPath, 'wal', 'timed'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [ready] = (await once(writer.stdout!, 'data')) as [Buffer];
    assert.equal(ready.toString().trim(), 'ready');

    const events: JobReplicationEvent[] = [];
    const subscription = nats.subscribe(jobEventSubject('snapworker.jobs', JOB_ID, 'replication'));
    void (async () => {
      for await (const message of subscription) events.push(message.json<JobReplicationEvent>());
    })();

    const first = await startWorker();
    const enqueued = await run(['replicate', `sqlite://${dbPath}`, '--interval', '1s']);
    assert.equal(enqueued.code, 0, enqueued.stderr);
    assert.equal(enqueued.stdout.trim(), JOB_ID);
    const again = await run(['replicate', `sqlite://${dbPath}`, '--interval', '1s']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /replicator replicate\.default\.app is already (active|waiting|prioritized)/);

    const running = await eventually('the replicator to replicate on the first worker', async () => {
      const listing = (await listReplicators()).find((l) => l.jobId === JOB_ID);
      return listing?.state === 'replicating' && listing.generation ? listing : undefined;
    }, 120_000);
    assert.equal(running.database, 'app');
    assert.ok(running.lagSeconds !== undefined && running.lagSeconds >= 0);
    const metrics = await (await fetch(`http://127.0.0.1:${first.port}/metrics`)).text();
    assert.match(metrics, /snapworker_replication_lag_seconds\{database="app"\} [\d.]+/);
    assert.match(metrics, /snapworker_replication_generations_total\{database="app"\} [1-9]/);
    assert.match(metrics, /snapworker_replication_segment_bytes_total\{database="app"\} \d+/);
    assert.doesNotMatch(metrics, new RegExp(`database="${dbPath}`), 'no path as a label');

    // Start the second worker, let the first ship past the moment it was ready, then kill the first mid-run.
    const second = await startWorker();
    const secondReadyAt = Date.now();
    await eventually('a segment shipped after the second worker started', async () => {
      const listing = (await listReplicators()).find((l) => l.jobId === JOB_ID);
      return listing?.shippedAt && Date.parse(listing.shippedAt) > secondReadyAt;
    }, 60_000);
    first.worker.child.kill('SIGKILL');
    await first.worker.exited;
    const killedAt = Date.now();

    // The second worker takes it over (stalled check every 1 s, lock 3 s) and ships past the kill.
    const moved = await eventually('the replicator to move to the second worker', async () => {
      const metricsText = await (await fetch(`http://127.0.0.1:${second.port}/metrics`)).text();
      const listing = (await listReplicators()).find((l) => l.jobId === JOB_ID);
      const shippedAfterKill = listing?.shippedAt && Date.parse(listing.shippedAt) > killedAt;
      return listing?.state === 'replicating' && shippedAfterKill && /snapworker_replication_lag_seconds\{database="app"\}/.test(metricsText) ? listing : undefined;
    }, 120_000);
    const tookOverAfterMs = Date.parse(moved.shippedAt!) - killedAt;

    // Stop the writer, wait until the replica holds its last commit, then stop the replicator.
    const stdout: Buffer[] = [];
    writer.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
    writer.kill('SIGTERM');
    await once(writer, 'exit');
    writer = undefined;
    const committed = Number(/committed (\d+)/.exec(Buffer.concat(stdout).toString())?.[1]);
    const writerStoppedAt = Date.now();
    await eventually('a sync after the writer stopped', async () => {
      const listing = (await listReplicators()).find((l) => l.jobId === JOB_ID);
      return listing?.syncedFrom && Date.parse(listing.syncedFrom) > writerStoppedAt;
    }, 60_000);
    const stopped = await run(['replicate', 'stop', 'app']);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, /cancelled job replicate\.default\.app/);
    const afterStop = (await listReplicators()).find((l) => l.jobId === JOB_ID);
    assert.equal(afterStop?.state, 'stopped');
    assert.ok(afterStop?.endedAt && afterStop.generation, `an ended row says when it ended and where it stopped: ${JSON.stringify(afterStop)}`);
    // A stop is a completed job, never a failure: no failed outcome in the worker's metrics.
    const stoppedMetrics = await (await fetch(`http://127.0.0.1:${second.port}/metrics`)).text();
    assert.match(stoppedMetrics, /snapworker_jobs_total\{kind="replicate",outcome="completed"\} 1/);
    assert.match(stoppedMetrics, /snapworker_jobs_total\{kind="replicate",outcome="failed"\} 0/);
    const table = await run(['replicate', 'ls']);
    assert.match(table.stdout, /^app +stopped .*replicate\.default\.app$/m);
    assert.match(table.stdout, /^1 ended: /m);

    // Latest: every transaction the writer committed, whole, none missing.
    const store = new ReplicaStore(new FsDriver({ root: environment.repoDir }), 'app');
    const latest = path.join(environment.root, 'latest.db');
    await restoreReplica(store, {}, latest, { replace: false });
    assertPrefix(wholeTransactions(latest).txns, committed);

    // At the kill: a prefix with no gap, holding every commit older than the interval plus the
    // time a loaded machine takes for a round (measured, reported; bounded generously).
    const atKill = path.join(environment.root, 'at-kill.db');
    await restoreReplica(store, { timestamp: new Date(killedAt) }, atKill, { replace: false });
    const { txns } = wholeTransactions(atKill);
    assertPrefix(txns, txns.length);
    const { times } = wholeTransactions(latest);
    const lostCommits = [...times].filter(([txn, at]) => txn > txns.length && at < killedAt);
    const oldestLostMs = lostCommits.length ? killedAt - Math.min(...lostCommits.map(([, at]) => at)) : 0;
    process.stderr.write(`# SIGKILL: ${txns.length} of ${committed} transactions restorable at the kill; the oldest commit not yet shipped was ${oldestLostMs} ms old; taken over ${tookOverAfterMs} ms after the kill\n`);
    assert.ok(oldestLostMs < 15_000, `commits ${oldestLostMs} ms older than the kill were not shipped`);

    subscription.unsubscribe();
    second.worker.child.kill('SIGTERM');
    await second.worker.exited;
    const changes = events.map((event) => event.change);
    assert.equal(changes[0], 'started');
    assert.ok(changes.includes('moved'), `events: ${changes.join(', ')}`);
    assert.ok(changes.includes('generation'));
    for (const event of events) {
      assert.equal(event.database, 'app');
      assert.equal(event.kind, 'replicate');
    }
  });

  it('lists a replicator that ended more than a day ago only with --all, and counts it under the table', async () => {
    // The first test's replicator ended (stopped, or failed if that test did); move its end two days back.
    const redis = (await environment.queue.client) as unknown as { hset(key: string, field: string, value: string): Promise<number> };
    await redis.hset(environment.queue.toKey(JOB_ID), 'finishedOn', String(Date.now() - 2 * 24 * 3600_000));
    const table = await run(['replicate', 'ls']);
    assert.equal(table.code, 0, table.stderr);
    assert.doesNotMatch(table.stdout, /replicate\.default\.app$/m);
    assert.match(table.stdout, /^1 ended more than a day ago( \(1 failed\))?, not shown: replicate ls --all$/m);
    assert.ok(!(await listReplicators()).some((l) => l.jobId === JOB_ID), 'not in --json either');
    const all = await run(['replicate', 'ls', '--all']);
    assert.match(all.stdout, /^app +(stopped|failed: ).*replicate\.default\.app$/m);
    assert.doesNotMatch(all.stdout, /not shown/);
  });

  it('refuses a database that is not in WAL mode with one line, without retries', async () => {
    const dbPath = path.join(environment.root, 'journal.db');
    const { default: Database } = await import('better-sqlite3');
    new Database(dbPath).exec('CREATE TABLE t (x)').close();
    const result = await run(['replicate', `sqlite://${dbPath}`, '--local']);
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stderr.trim().split('\n').length, 1);
    assert.match(result.stderr, /journal mode; replication needs WAL mode/);
  });

  it('refuses a replica name already replicated from another database', async () => {
    // The first test's job ended; a live one is needed: enqueue one with no worker to take it.
    const other = await run(['replicate', `sqlite://${path.join(environment.root, 'x', 'app.db')}`]);
    assert.equal(other.code, 0, other.stderr);
    const clash = await run(['replicate', `sqlite://${path.join(environment.root, 'y', 'app.db')}`]);
    assert.equal(clash.code, 2);
    assert.match(clash.stderr, /already replicated from .*x\/app\.db.*give this database another --name/);
    const stop = await run(['replicate', 'stop', JOB_ID]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /removed job/);
  });

  it('runs replicators in slots of their own: a second one waits while a snapshot still runs', async () => {
    const { default: Database } = await import('better-sqlite3');
    const sources: string[] = [];
    for (const name of ['one', 'two']) {
      const dbPath = path.join(environment.root, `${name}.db`);
      const db = new Database(dbPath);
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE t (x)');
      // Left open: its WAL stays, as under a running application.
      sources.push(dbPath);
      after(() => db.close());
    }
    const port = await freePort();
    const worker = spawnWorker(environment, { SNAPWORKER_METRICS_PORT: String(port), SNAPWORKER_CONCURRENCY: '1', SNAPWORKER_MAX_REPLICATORS: '1' });
    workers.push(worker);
    for (const source of sources) assert.equal((await run(['replicate', `sqlite://${source}`])).code, 0);
    await eventually('one replicator to replicate', async () => (await listReplicators()).some((l) => l.state === 'replicating'), 120_000);
    // The snapshot gets the worker's one ordinary slot although a replicator holds one of its own.
    const dir = path.join(environment.root, 'files');
    await mkdir(dir);
    await writeFile(path.join(dir, 'a.txt'), 'a');
    const snapshot = await run(['snapshot', `dir://${dir}`, '--wait', '--json']);
    assert.equal(snapshot.code, 0, snapshot.stderr);
    // The other replicator keeps being handed back (delayed, then waiting again): never replicating.
    for (let i = 0; i < 3; i++) {
      const listings = (await listReplicators()).filter((l) => l.database === 'one' || l.database === 'two');
      assert.equal(listings.filter((l) => l.state === 'replicating').length, 1, JSON.stringify(listings));
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const listings = (await listReplicators()).filter((l) => l.database === 'one' || l.database === 'two');
    for (const l of listings) assert.equal((await run(['replicate', 'stop', l.jobId])).code, 0);
    worker.child.kill('SIGTERM');
    await worker.exited;
  });

  it('with retention, begins generations every half window and removes those no point inside the window needs', async () => {
    const dir = path.join(environment.root, 'retention');
    await mkdir(dir);
    const dbPath = path.join(dir, 'ret.db');
    const retentionWriter = spawn(process.execPath, ['--import', 'tsx', WRITER_SCRIPT, dbPath, 'wal', 'timed'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [ready] = (await once(retentionWriter.stdout!, 'data')) as [Buffer];
    assert.equal(ready.toString().trim(), 'ready');
    const storage = new Repository('ret', new FsDriver({ root: path.join(dir, 'repo') })).replicaStorage();
    const store = new ReplicaStore(storage, 'ret');
    const controller = new AbortController();
    const generations: string[] = [];
    // Resolved by the first status whose sync began after `since` (statuses come at most once a second).
    let syncedAfter: { since: number; resolve: () => void } | undefined;
    // A 2 s window: a new generation every second, retention after each.
    const running = runReplicateJob({
      storage,
      source: `sqlite://${dbPath}`,
      intervalMs: 200,
      retentionMs: 2000,
      endpoints: { checkPath: () => {}, stagingDir: dir, natsProfiles: {}, restoreSetuid: false } as never,
      signal: controller.signal,
      onChange: (change) => {
        if (change.change === 'generation') generations.push(change.generation!);
      },
      onStatus: (status) => {
        if (syncedAfter && status.syncedFrom && Date.parse(status.syncedFrom) > syncedAfter.since) syncedAfter.resolve();
      },
    }).catch((err: unknown) => err);
    await eventually('four generations', () => generations.length >= 4, 120_000);
    const stdout: Buffer[] = [];
    retentionWriter.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
    retentionWriter.kill('SIGTERM');
    await once(retentionWriter, 'exit');
    const committed = Number(/committed (\d+)/.exec(Buffer.concat(stdout).toString())?.[1]);
    // A sync that began after the writer's last commit has shipped it.
    const shipped = new Promise<void>((resolve) => (syncedAfter = { since: Date.now(), resolve }));
    await Promise.race([shipped, running.then((outcome) => assert.fail(`the replicator ended early: ${String(outcome)}`))]);
    // Retention runs as generations begin; the oldest leaves the window a whole window after the
    // next one began, which on a fast machine can be just after the fourth generation was seen.
    await eventually('retention to remove a generation', async () => (await store.generations()).length < generations.length, 60_000);
    controller.abort(new Error('test over'));
    assert.match(String(await running), /test over/);

    const kept = await store.generations();
    assert.ok(kept.length < generations.length, `kept ${kept.length} of ${generations.length} generations`);
    assert.deepEqual(kept, generations.slice(-kept.length), 'the newest generations are the ones kept');
    const latest = path.join(dir, 'latest.db');
    await restoreReplica(store, {}, latest, { replace: false });
    assertPrefix(wholeTransactions(latest).txns, committed);
  });

  it('goes back to the queue, not failed, when its worker shuts down', async () => {
    const { default: Database } = await import('better-sqlite3');
    const dbPath = path.join(environment.root, 'shutdown.db');
    const db = new Database(dbPath);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (x)');
    after(() => db.close());
    const port = await freePort();
    const worker = spawnWorker(environment, { SNAPWORKER_METRICS_PORT: String(port), SNAPWORKER_SHUTDOWN_GRACE_SECONDS: '1' });
    workers.push(worker);
    const enqueued = await run(['replicate', `sqlite://${dbPath}`]);
    assert.equal(enqueued.code, 0, enqueued.stderr);
    const jobId = enqueued.stdout.trim();
    await eventually('the replicator to replicate', async () => (await listReplicators()).find((l) => l.jobId === jobId)?.state === 'replicating', 120_000);
    worker.child.kill('SIGTERM');
    assert.equal(await worker.exited, 0);
    const job = await environment.queue.getJob(jobId);
    assert.ok(['waiting', 'prioritized'].includes(await job!.getState()), `state ${await job!.getState()}`);
    assert.equal(job!.failedReason, undefined);
    assert.match(worker.logs(), /job returned to the queue for another worker/);
    const stop = await run(['replicate', 'stop', 'shutdown']);
    assert.equal(stop.code, 0, stop.stderr);
  });
});
