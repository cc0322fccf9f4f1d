import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Job } from 'bullmq';
import { makeTree, writeRandomFile } from './helpers/tree.js';
import { createTestEnvironment, eventually, spawnWorker, startTestWorker, type TestEnvironment, type WorkerProcess } from './helpers/worker-fixture.js';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { Repository } from '../shared/catalog/repository.js';
import { FsDriver } from '../shared/storage/fs/fs-driver.js';

async function stopProcess(worker: WorkerProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill(signal);
  await worker.exited;
}

/** Waits until the job is active and has reported payload bytes. */
async function waitUntilTransferring(environment: TestEnvironment, job: Job): Promise<void> {
  await eventually(
    'the job to move bytes',
    async () => {
      const current = await environment.queue.getJob(job.id!);
      const progress = current?.progress as { bytesDone?: number } | undefined;
      return (await current?.getState()) === 'active' && (progress?.bytesDone ?? 0) > 0;
    },
    60_000,
  );
}

describe('the worker fleet under load and failure', () => {
  let environment: TestEnvironment;
  let repository: Repository;

  before(async () => {
    environment = await createTestEnvironment({ SNAPWORKER_STALLED_INTERVAL_MS: '1000', SNAPWORKER_LOCK_DURATION_MS: '3000' });
    repository = new Repository('default', new FsDriver({ root: environment.repoDir }));
  });
  after(async () => {
    await environment?.cleanup();
  });

  it('runs 200 jobs over 2 worker processes, each exactly once', async () => {
    const source = path.join(environment.root, 'tiny');
    await makeTree(source, { 'a.txt': 'a', 'b.txt': 'b' });
    const workers = [spawnWorker(environment, { SNAPWORKER_CONCURRENCY: '4' }), spawnWorker(environment, { SNAPWORKER_CONCURRENCY: '4' })];
    try {
      const jobs = await environment.queue.addBulk(
        Array.from({ length: 200 }, (_, i) => ({ name: 'snapshot', data: { v: 1, source: `dir://${source}`, name: 'fleet', labels: { n: String(i) } }, opts: { priority: 10 } })),
      );
      const records = (await Promise.all(jobs.map((job) => job.waitUntilFinished(environment.events, 120_000)))) as SnapshotRecord[];
      assert.equal(new Set(records.map((r) => r.id)).size, 200, 'every job wrote its own snapshot');
      const stored = await Promise.all(jobs.map((job) => environment.queue.getJob(job.id!)));
      for (const job of stored) {
        assert.equal(job!.attemptsStarted, 1, `job ${job!.id} started once`);
        assert.equal(job!.attemptsMade, 1, `job ${job!.id} finished on its first attempt`);
      }
      const listed = await repository.list({ source: 'fleet' });
      assert.equal(listed.length, 200);
      const completions = workers.map((w) => (w.logs().match(/"msg":"job completed"/g) ?? []).length);
      assert.equal(completions[0]! + completions[1]!, 200, `completions per worker: ${completions.join(', ')}`);
      assert.ok(completions.every((n) => n > 0), `both workers took jobs: ${completions.join(', ')}`);
    } finally {
      await Promise.all(workers.map((w) => stopProcess(w)));
    }
  });

  it('takes up a snapshot again after its worker is killed with SIGKILL, and never lists a partial one', async () => {
    const source = path.join(environment.root, 'big');
    await makeTree(source, { 'small.txt': 'x' });
    await writeRandomFile(path.join(source, 'big.bin'), 256 << 20);
    const doomed = spawnWorker(environment);
    const job = await environment.queue.add('snapshot', { v: 1, source: `dir://${source}`, name: 'killed', compression: 'gzip' }, { attempts: 1 });
    await waitUntilTransferring(environment, job);
    doomed.child.kill('SIGKILL');
    await doomed.exited;
    assert.deepEqual(await repository.list({ source: 'killed' }), [], 'nothing listed while the snapshot is unfinished');

    const rescuer = spawnWorker(environment);
    try {
      const record = (await job.waitUntilFinished(environment.events, 120_000)) as SnapshotRecord;
      const listed = await repository.list({ source: 'killed' });
      assert.deepEqual(listed.map((r) => r.id), [record.id], 'exactly the finished snapshot is listed');
      const leftovers = (await readdir(path.join(environment.repoDir, 'snapshots', record.id))).sort();
      assert.deepEqual(leftovers, ['archive.tar.gz', 'entries.jsonl.zst', 'snapshot.json'], 'the retry replaced its own partial archive');
    } finally {
      await stopProcess(rescuer);
    }
  });

  it('returns a running job to the queue when the shutdown grace runs out, and another worker completes it', async () => {
    const source = path.join(environment.root, 'graceful');
    await makeTree(source, {});
    await writeRandomFile(path.join(source, 'big.bin'), 256 << 20);
    const leaving = spawnWorker(environment, { SNAPWORKER_SHUTDOWN_GRACE_SECONDS: '0' });
    const job = await environment.queue.add('snapshot', { v: 1, source: `dir://${source}`, name: 'graceful', compression: 'gzip' }, { attempts: 1 });
    await waitUntilTransferring(environment, job);
    await stopProcess(leaving, 'SIGTERM');
    assert.match(leaving.logs(), /job returned to the queue/);
    assert.equal(await (await environment.queue.getJob(job.id!))!.getState(), 'waiting');

    const { worker } = await startTestWorker(environment);
    try {
      const record = (await job.waitUntilFinished(environment.events, 120_000)) as SnapshotRecord;
      assert.equal(record.source.name, 'graceful');
    } finally {
      await worker.stop();
    }
  });

  it('runs a restore before a backlog of snapshots', async () => {
    const source = path.join(environment.root, 'backlog-src');
    await makeTree(source, { 'x.txt': 'x'.repeat(1000) });
    const seed = await environment.queue.add('snapshot', { v: 1, source: `dir://${source}`, name: 'backlog' });
    const { worker } = await startTestWorker(environment, { SNAPWORKER_CONCURRENCY: '1' });
    try {
      const record = (await seed.waitUntilFinished(environment.events, 60_000)) as SnapshotRecord;
      await environment.queue.pause();
      const backlog = await environment.queue.addBulk(
        Array.from({ length: 30 }, () => ({ name: 'snapshot', data: { v: 1, source: `dir://${source}`, name: 'backlog' }, opts: { priority: 10 } })),
      );
      const restore = await environment.queue.add('restore', { v: 1, snapshot: record.id, target: `dir://${path.join(environment.root, 'urgent')}` }, { priority: 1 });
      await environment.queue.resume();
      await restore.waitUntilFinished(environment.events, 60_000);
      const restoredAt = (await environment.queue.getJob(restore.id!))!.processedOn!;
      const snapshotStarts = await Promise.all(backlog.map(async (j) => (await environment.queue.getJob(j.id!))!.processedOn ?? Infinity));
      const startedBefore = snapshotStarts.filter((t) => t < restoredAt).length;
      assert.ok(startedBefore <= 1, `${startedBefore} backlog snapshots started before the restore`);
      await Promise.all(backlog.map((j) => j.waitUntilFinished(environment.events, 120_000)));
    } finally {
      await worker.stop();
    }
  });
});
