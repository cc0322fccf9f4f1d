import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { cli } from './helpers/cli.js';

describe('a damaged snapshot record', () => {
  let root: string;
  after(() => rm(root, { recursive: true, force: true }));

  it('is named by ls on stderr while every other snapshot is still listed', async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-damaged-'));
    const env = { SNAPWORKER_ALLOWED_PATHS: root };
    await mkdir(path.join(root, 'src'));
    await writeFile(path.join(root, 'src', 'a'), 'a');
    const repo = `file://${root}/repo`;
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const run = await cli(['snapshot', `dir://${root}/src`, '--repo', repo, '--local', '--json'], env);
      assert.equal(run.code, 0, run.stderr);
      ids.push((JSON.parse(run.stdout) as { id: string }).id);
    }
    await writeFile(path.join(root, 'repo', 'snapshots', ids[0]!, 'snapshot.json'), '{broken');

    const ls = await cli(['ls', '--repo', repo, '--json'], env);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual((JSON.parse(ls.stdout) as { id: string }[]).map((r) => r.id), [ids[1]]);
    assert.match(ls.stderr, new RegExp(`warning: .*record of ${ids[0]} is not JSON; left out of the list`));
  });
});
