import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { compareTrees, makeTortureTree, type TortureTree } from './helpers/torture-tree.js';
import { cli as runCli } from './helpers/cli.js';
import { sh, useTestWorker } from './helpers/worker-fixture.js';

const cli = (args: string[]) => runCli(args, { LOG_LEVEL: 'warn' });


/** The socket is named (a warning and the record's notices) but leaves the snapshot complete: exit 0. */
function assertSnapshotExit(code: number | null, stderr: string): void {
  assert.equal(code, 0, stderr);
  assert.match(stderr, /warning: unsupported data\/special\/socket: socket/);
}

describe('the torture tree (every entry kind a Linux tree holds)', () => {
  let root: string;
  let tree: TortureTree;

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-torture-'));
    tree = await makeTortureTree(path.join(root, 'src'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('round-trips through --local snapshot and restore: name bytes, types, modes, ns mtimes, links, hard links, devices, holes, xattrs', async () => {
    const repo = `file://${path.join(root, 'repo-local')}`;
    const snap = await cli(['snapshot', `dir://${tree.root}`, '--repo', repo, '--local', '--json']);
    assertSnapshotExit(snap.code, snap.stderr);
    const record = JSON.parse(snap.stdout) as SnapshotRecord;
    assert.deepEqual(record.notices?.first, [{ kind: 'unsupported', path: 'data/special/socket', reason: 'socket' }]);
    assert.notEqual(record.incomplete, true);
    const target = path.join(root, 'restored-local');
    const restore = await cli(['restore', record.id, `dir://${target}`, '--repo', repo, '--local', '--json']);
    assert.equal(restore.code, 0, restore.stderr);
    assert.deepEqual(compareTrees(tree.root, target, { ignore: tree.unsupported }), []);

    const verify = await cli(['verify', record.id, '--repo', repo, '--local']);
    assert.equal(verify.code, 0, verify.stderr);
  });

  it('extracts with GNU tar (--xattrs) to the same tree, holes and attributes included, and sha256sum -c passes on it', async () => {
    const repoDir = path.join(root, 'repo-tar');
    const snap = await cli(['snapshot', `dir://${tree.root}`, '--repo', `file://${repoDir}`, '--local', '--json']);
    assertSnapshotExit(snap.code, snap.stderr);
    const record = JSON.parse(snap.stdout) as SnapshotRecord;
    const archive = path.join(repoDir, 'snapshots', record.id, (await readdir(path.join(repoDir, 'snapshots', record.id))).find((n) => n.startsWith('archive'))!);
    const out = path.join(root, 'gnu-tar');
    await mkdir(out);
    const extract = await sh(`zstd -dc '${archive}' | tar --xattrs --xattrs-include='*' -x -C '${out}' 2>&1 | grep -v 'implausibly old time stamp' ; exit \${PIPESTATUS[1]}`);
    assert.equal(extract.code, 0, extract.output);
    assert.deepEqual(compareTrees(tree.root, path.join(out, 'data'), { ignore: tree.unsupported }), []);
    const sums = await sh(`cd '${out}' && sha256sum --quiet -c SHA256SUMS`);
    assert.equal(sums.code, 0, sums.output);
  });

  describe('through the queue', () => {
    const fixture = useTestWorker();

    it('round-trips as queued snapshot and restore jobs', async () => {
      const { environment } = fixture;
      const source = path.join(environment.root, 'torture');
      const queued = await makeTortureTree(source);
      const snapshotJob = await environment.queue.add('snapshot', { v: 1, source: `dir://${source}` });
      const record = (await snapshotJob.waitUntilFinished(environment.events, 60_000)) as SnapshotRecord;
      assert.deepEqual(record.notices?.counts, { unsupported: 1 });
      const target = path.join(environment.root, 'torture-restored');
      const restoreJob = await environment.queue.add('restore', { v: 1, snapshot: record.id, target: `dir://${target}` });
      await restoreJob.waitUntilFinished(environment.events, 60_000);
      assert.deepEqual(compareTrees(source, target, { ignore: queued.unsupported }), []);
    });
  });
});
