import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { cli } from './helpers/cli.js';

describe('a damaged snapshot record', () => {
  let root: string;
  after(() => rm(root, { recursive: true, force: true }));

  it('is named by catalog rebuild on stderr and left out of the index (exit 3), while every other snapshot is still listed', async () => {
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

    // ls reads the catalog index, which knows nothing of a record changed behind its back;
    // show reads the record itself and names the damage.
    const show = await cli(['show', ids[0]!, '--repo', repo], env);
    assert.equal(show.code, 1);
    assert.match(show.stderr, new RegExp(`record of ${ids[0]} is not JSON`));

    const rebuild = await cli(['catalog', 'rebuild', '--repo', repo], env);
    assert.equal(rebuild.code, 3, `completed with a record left out: exit 3, never 0 (${rebuild.stderr})`);
    assert.match(rebuild.stderr, new RegExp(`warning: .*record of ${ids[0]} is not JSON; left out of the index`));
    assert.match(rebuild.stdout, /1 snapshot in 1 lineage, .* 1 damaged record left out/);

    const ls = await cli(['ls', '--repo', repo, '--json'], env);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual((JSON.parse(ls.stdout) as { id: string }[]).map((r) => r.id), [ids[1]]);

    // Left out of the catalog, so prune and rm --all never see it: rm by its id removes it.
    const removed = await cli(['rm', ids[0]!, '--repo', repo], env);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(removed.stdout, `removed ${ids[0]} (its record was damaged)\n`);
    assert.deepEqual(await readdir(path.join(root, 'repo', 'snapshots')), [ids[1]]);

    // A filter beside an id is a check, never ignored.
    const mismatch = await cli(['rm', ids[1]!, '--repo', repo, '--label', 'app=other'], env);
    assert.equal(mismatch.code, 2);
    assert.equal(mismatch.stderr, `snapworker: rm: snapshot ${ids[1]} does not match app=other; nothing removed\n`);
    assert.deepEqual(await readdir(path.join(root, 'repo', 'snapshots')), [ids[1]]);
  });
});
