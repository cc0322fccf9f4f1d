import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertTreesEqual, dir, file, makeTree, symlink } from './helpers/tree.js';
import { runCli as cli } from './helpers/cli-runner.js';
import { useTestWorker } from './helpers/worker-fixture.js';

describe('the snapworker command line', () => {
  let root: string;
  let repo: string;
  let source: string;

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-cli-'));
    repo = `file://${path.join(root, 'repo')}`;
    source = path.join(root, 'site');
    await makeTree(source, {
      'index.html': '<h1>hi</h1>',
      assets: dir({ 'app.js': file('console.log(1)', { mode: 0o640 }) }),
      'latest.html': symlink('index.html'),
    });
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('snapshots, lists, shows, verifies, restores and removes with --local, printing JSON results', async () => {
    const snap = await cli(['snapshot', `dir://${source}`, '--repo', repo, '--label', 'env=test', '--local', '--json']);
    assert.equal(snap.code, 0, snap.stderr);
    const record = JSON.parse(snap.stdout);
    assert.equal(record.source.name, 'site');

    const ls = await cli(['ls', '--repo', repo, '--label', 'env=test', '--json']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(JSON.parse(ls.stdout).map((r: { id: string }) => r.id), [record.id]);

    const human = await cli(['ls', '--repo', repo]);
    assert.match(human.stdout, new RegExp(`${record.id}\\s+dir\\s+site`));

    const show = await cli(['show', 'latest', '--source', 'site', '--repo', repo]);
    assert.equal(JSON.parse(show.stdout).id, record.id);

    const verify = await cli(['verify', record.id, '--repo', repo, '--local']);
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /verified/);

    const target = path.join(root, 'restored');
    const restore = await cli(['restore', 'latest', `dir://${target}`, '--source', 'site', '--repo', repo, '--local', '--json']);
    assert.equal(restore.code, 0, restore.stderr);
    assert.equal(JSON.parse(restore.stdout).snapshotId, record.id);
    await assertTreesEqual(source, target);

    const again = await cli(['restore', record.id, `dir://${target}`, '--repo', repo, '--local']);
    assert.equal(again.code, 2, 'an existing target is refused without --replace');
    assert.match(again.stderr, /exists/);

    const rm_ = await cli(['rm', record.id, '--repo', repo]);
    assert.equal(rm_.code, 0, rm_.stderr);
    const empty = await cli(['ls', '--repo', repo, '--json']);
    assert.deepEqual(JSON.parse(empty.stdout), []);
  });

  it('reports bad input in one line with exit code 2, without a stack trace', async () => {
    for (const args of [
      ['snapshot', 'ftp://nowhere', '--local', '--repo', repo],
      ['restore', 'not-an-id', `dir://${root}/x`, '--local', '--repo', repo],
      ['frobnicate'],
      ['snapshot', `dir://${source}`, '--local', '--repo', 'file://relative'],
    ]) {
      const run = await cli(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, /^snapworker: /);
      assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    }
    const badConfig = await cli(['ls'], { SNAPWORKER_CONCURRENCY: 'many' });
    assert.equal(badConfig.code, 2);
    assert.match(badConfig.stderr, /SNAPWORKER_CONCURRENCY/);
  });

  describe('with a worker', () => {
    const fixture = useTestWorker();

    it('enqueues and prints the job id, or follows the job with --wait until it ends', async () => {
      const { environment } = fixture;
      const src = path.join(environment.root, 'queued');
      await makeTree(src, { 'a.txt': 'a'.repeat(1000) });
      const enqueued = await cli(['snapshot', `dir://${src}`], environment.env);
      assert.equal(enqueued.code, 0, enqueued.stderr);
      const jobId = enqueued.stdout.trim();
      const job = await environment.queue.getJob(jobId);
      assert.ok(job, 'the printed id is a job on the queue');
      await job.waitUntilFinished(environment.events, 60_000);

      const waited = await cli(['snapshot', `dir://${src}`, '--wait', '--json'], environment.env);
      assert.equal(waited.code, 0, waited.stderr);
      assert.equal(JSON.parse(waited.stdout).source.name, 'queued');

      const failed = await cli(['verify', '20200101T000000000Z-00000000', '--wait'], environment.env);
      assert.equal(failed.code, 1);
      assert.match(failed.stderr, /failed: .*no snapshot 20200101T000000000Z-00000000/);
      assert.equal(await readFile(path.join(src, 'a.txt'), 'utf8'), 'a'.repeat(1000));
    });
  });
});
