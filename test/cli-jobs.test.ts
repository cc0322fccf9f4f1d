import assert from 'node:assert/strict';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { cli, spawnCli } from './helpers/cli.js';
import { makeTree } from './helpers/tree.js';
import { Worker } from 'bullmq';
import { createTestEnvironment, eventually, REDIS, startTestWorker, useTestWorker } from './helpers/worker-fixture.js';

/** A directory holding one sparse file of `gib` GiB: snapshots of it run for a while, cost no disk. */
async function slowSource(root: string, gib: number): Promise<string> {
  const dir = path.join(root, `slow-${Date.now()}`);
  await mkdir(dir);
  const handle = await open(path.join(dir, 'zeros.bin'), 'w');
  await handle.truncate(gib * 1024 ** 3);
  await handle.close();
  return dir;
}

describe('following and controlling queued jobs from the command line', () => {
  // No NATS_URL here: watch <id> follows the queue itself.
  const fixture = useTestWorker();
  const env = () => fixture.environment.env;

  it('Ctrl-C during --wait says the job is still running and exits 130; job cancel aborts it; status and watch report the end at once', async () => {
    const { environment } = fixture;
    const source = await slowSource(environment.root, 64);
    const waiting = spawnCli(['snapshot', `dir://${source}`, '--wait', '--job-id', 'slow-one'], env());
    await eventually('the job to run', async () => (await environment.queue.getJob('slow-one'))?.getState().then((s) => s === 'active'), 30_000);
    // The command follows the job from the moment it is enqueued; leave it that moment.
    await new Promise((resolve) => setTimeout(resolve, 300));
    waiting.child.kill('SIGINT');
    const interrupted = await waiting.done;
    assert.equal(interrupted.code, 130, interrupted.stderr);
    assert.equal(interrupted.stderr, 'snapworker: job slow-one is still running; "snapworker job cancel slow-one" stops it\n');
    assert.equal(await (await environment.queue.getJob('slow-one'))!.getState(), 'active', 'the job goes on');

    const started = Date.now();
    const cancel = await cli(['job', 'cancel', 'slow-one'], env());
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.equal(cancel.stdout, 'cancelled job slow-one (snapshot)\n');
    assert.ok(Date.now() - started < 15_000);
    const job = (await environment.queue.getJob('slow-one'))!;
    assert.equal(job.failedReason, 'cancelled by request');
    assert.equal(job.attemptsMade, 1, 'a cancelled job is not retried');

    const status = await cli(['job', 'status', 'slow-one', '--json'], env());
    assert.equal(status.code, 0, status.stderr);
    assert.deepEqual(
      (({ state, failedReason }) => ({ state, failedReason }))(JSON.parse(status.stdout)),
      { state: 'failed', failedReason: 'cancelled by request' },
    );
    const watched = await cli(['watch', 'slow-one'], env());
    assert.equal(watched.code, 1, 'watch of a failed job reports it at once');
    assert.match(watched.stdout, /^\S+ snapshot slow-one failed: cancelled by request\n$/);

    const again = await cli(['job', 'cancel', 'slow-one'], env());
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already failed; nothing to cancel/);
  });

  it('Ctrl-C during --wait on a job no worker has taken says it has not started and stays queued, not that it runs', async () => {
    const idle = await createTestEnvironment(); // no worker on this queue
    await mkdir(path.join(idle.root, 'never'));
    const waiting = spawnCli(['snapshot', `dir://${path.join(idle.root, 'never')}`, '--wait', '--job-id', 'never-started'], idle.env);
    try {
      await eventually('the job to be enqueued', () => idle.queue.getJob('never-started'), 30_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      waiting.child.kill('SIGINT');
      const interrupted = await waiting.done;
      assert.equal(interrupted.code, 130, interrupted.stderr);
      assert.equal(
        interrupted.stderr,
        'snapworker: job never-started has not started (waiting for a worker); it stays queued: "snapworker job cancel never-started" removes it\n',
      );
      assert.ok(await idle.queue.getJob('never-started'), 'the job stays queued');
      const status = await cli(['job', 'status', 'never-started'], idle.env);
      assert.equal(status.stdout, 'job never-started (snapshot): waiting for a worker, not started\n');
    } finally {
      waiting.child.kill();
      await idle.cleanup();
    }
  });

  it('a cancellation no running worker heard stops the job when a worker takes it up again', async () => {
    const other = await createTestEnvironment();
    const holder = new Worker(other.queueName, null, { connection: REDIS, autorun: false });
    try {
      await other.queue.add('snapshot', { v: 1, source: `dir://${other.root}` }, { jobId: 'orphan-one' });
      // Active under a worker that then goes quiet (as if it died).
      const job = (await holder.getNextJob('holder-token'))!;
      assert.equal(job.id, 'orphan-one');
      const cancel = await cli(['job', 'cancel', 'orphan-one'], other.env);
      assert.equal(cancel.code, 1, cancel.stderr);
      assert.match(cancel.stderr, /no worker of queue \S+ is listening now; the job fails as cancelled when a worker takes it up again/);
      await job.moveToWait('holder-token');
      const { worker } = await startTestWorker(other);
      try {
        await eventually('the job to fail', async () => (await other.queue.getJob('orphan-one'))?.failedReason);
        assert.equal((await other.queue.getJob('orphan-one'))!.failedReason, 'cancelled by request');
      } finally {
        await worker.stop();
      }
    } finally {
      await holder.close();
      await other.cleanup();
    }
  });

  it('watch of a job the queue does not hold says so at once, with NATS as without', async () => {
    for (const extra of [{}, { NATS_URL: 'nats://127.0.0.1:4222' }]) {
      const run = await cli(['watch', 'no-such-job'], { ...env(), ...extra });
      assert.equal(run.code, 2, run.stderr);
      assert.equal(run.stderr, `snapworker: watch: job no-such-job: not in queue ${fixture.environment.queueName} (unknown, or removed after it ended)\n`);
    }
  });

  it('job cancel removes a job that has not started; an unknown job is named', async () => {
    const { environment } = fixture;
    await environment.queue.add('snapshot', { v: 1, source: 'dir:///nowhere' }, { jobId: 'later-one', delay: 60_000 });
    const cancel = await cli(['job', 'cancel', 'later-one'], env());
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(cancel.stdout, /removed job later-one \(snapshot\), which had not started/);
    assert.equal(await environment.queue.getJob('later-one'), undefined);
    const unknown = await cli(['job', 'status', 'no-such-job'], env());
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^snapworker: job no-such-job: not in queue /);
  });

  it('--wait on a job that already completed reports its result at once, and prints no progress without a terminal', async () => {
    const { environment } = fixture;
    const src = path.join(environment.root, 'small');
    await makeTree(src, { 'a.txt': 'a' });
    const first = await cli(['snapshot', `dir://${src}`, '--wait', '--job-id', 'small-one'], env());
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stderr, '', 'no progress or status lines without a terminal');
    assert.match(first.stdout, /^snapshot \S+ of small: 1 entry,/);
    const second = await cli(['snapshot', `dir://${src}`, '--wait', '--json', '--job-id', 'small-one'], env());
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stderr, '');
    assert.equal(JSON.parse(second.stdout).source.name, 'small');
    // The id is taken: another job under it would report this one's result as its own.
    for (const args of [
      ['snapshot', `dir://${environment.root}/other`, '--wait', '--job-id', 'small-one'],
      ['snapshot', `dir://${environment.root}/other`, '--job-id', 'small-one'],
      ['verify', 'latest', '--source', 'small', '--wait', '--job-id', 'small-one'],
    ]) {
      const taken = await cli(args, env());
      assert.equal(taken.code, 2, taken.stderr);
      assert.equal(taken.stderr, 'snapworker: job id small-one: already taken by a snapshot job with other data; nothing enqueued (use another id)\n');
    }
    const watched = await cli(['watch', 'small-one', '--json'], env());
    assert.equal(watched.code, 0, watched.stderr);
    assert.equal(JSON.parse(watched.stdout).result.source.name, 'small');
    // With NATS the live events would never come again: the stored end is reported.
    const onNats = await cli(['watch', 'small-one'], { ...env(), NATS_URL: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' });
    assert.equal(onNats.code, 0, onNats.stderr);
    assert.match(onNats.stdout, /^\S+ snapshot small-one completed \S+\n$/);
  });

  it('the same bad input has the same exit code with --local and --wait (an existing target without --replace)', async () => {
    const { environment } = fixture;
    const src = path.join(environment.root, 'kept');
    await makeTree(src, { 'b.txt': 'b' });
    const snap = await cli(['snapshot', `dir://${src}`, '--wait', '--json'], env());
    assert.equal(snap.code, 0, snap.stderr);
    const id = JSON.parse(snap.stdout).id as string;
    for (const mode of ['--local', '--wait']) {
      const run = await cli(['restore', id, `dir://${src}`, mode], env());
      assert.equal(run.code, 2, `${mode}: ${run.stderr}`);
      assert.match(run.stderr, /exists; replace it with --replace/);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    }
  });

  it('refuses a job id BullMQ would refuse, in our words, before enqueueing', async () => {
    const { environment } = fixture;
    for (const jobId of ['a:b', '42']) {
      const run = await cli(['snapshot', `dir://${environment.root}`, '--job-id', jobId], env());
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, new RegExp(`^snapworker: job id "${jobId}": must not`));
    }
    assert.equal(await environment.queue.count(), 0);
  });
});
