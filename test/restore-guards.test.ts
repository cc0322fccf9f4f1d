import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cli } from './helpers/cli.js';

/**
 * A restore with --replace swaps its target for the snapshot and deletes what was there. A
 * target that is, holds or lies inside a repository, or that is or holds the staging directory,
 * would delete what the worker depends on (a user report: `restore … dir:///tmp --replace` with
 * SNAPWORKER_ALLOWED_PATHS=/ replaced the whole of /tmp). Such targets are refused.
 */
describe('restore targets that would replace what the worker depends on', () => {
  let root: string;
  let repo: string;
  let staging: string;
  let env: NodeJS.ProcessEnv;
  let snapshotId: string;

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-guards-'));
    repo = path.join(root, 'outer', 'repo');
    staging = path.join(root, 'staging');
    await mkdir(path.join(root, 'src'), { recursive: true });
    await mkdir(staging);
    await writeFile(path.join(root, 'src', 'a.txt'), 'a');
    env = { SNAPWORKER_ALLOWED_PATHS: root, SNAPWORKER_STAGING_DIR: staging };
    const run = await cli(['snapshot', `dir://${root}/src`, '--repo', `file://${repo}`, '--local', '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    snapshotId = (JSON.parse(run.stdout) as { id: string }).id;
  });
  after(() => rm(root, { recursive: true, force: true }));

  for (const [name, target, pattern] of [
    ['the repository itself', () => repo, /holds repository .* a restore there would replace it/],
    ['a folder holding the repository', () => path.join(root, 'outer'), /holds repository/],
    ['a folder inside the repository', () => path.join(repo, 'snapshots'), /lies inside repository/],
    ['the staging directory', () => staging, /holds the staging directory/],
  ] as const) {
    it(`refuses ${name} as a target, with --local and one line, and the repository keeps its snapshot`, async () => {
      const run = await cli(['restore', snapshotId, `dir://${target()}`, '--replace', '--repo', `file://${repo}`, '--local'], env);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, pattern);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
      assert.deepEqual(await readdir(path.join(repo, 'snapshots')), [snapshotId]);
    });
  }

  it('still restores beside them', async () => {
    const run = await cli(['restore', snapshotId, `dir://${root}/restored`, '--repo', `file://${repo}`, '--local'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await readdir(path.join(root, 'restored')), ['a.txt']);
  });
});
