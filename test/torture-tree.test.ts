import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { compareTrees, makeTortureTree, type TortureTree } from './helpers/torture-tree.js';
import { PROJECT_ROOT, sh, useTestWorker } from './helpers/worker-fixture.js';

/** Runs the CLI; exit code and output. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'worker', 'cli.ts'), ...args], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Exit 3 once notices reach the exit code (the socket is reported); 0 before. */
function assertSnapshotExit(code: number | null, stderr: string): void {
  assert.ok(code === 0 || code === 3, `snapshot exited ${code}: ${stderr}`);
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
      const target = path.join(environment.root, 'torture-restored');
      const restoreJob = await environment.queue.add('restore', { v: 1, snapshot: record.id, target: `dir://${target}` });
      await restoreJob.waitUntilFinished(environment.events, 60_000);
      assert.deepEqual(compareTrees(source, target, { ignore: queued.unsupported }), []);
    });
  });
});
