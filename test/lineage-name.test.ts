import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseJobData } from '../jobs/validate.js';
import { cli } from './helpers/cli.js';
import { dirUri } from '../shared/kinds/dir/dir-uri.js';
import { createDirSource } from '../shared/kinds/dir/dir-source.js';
import { lineageNameFrom } from '../shared/kinds/lineage-name.js';

describe('lineage names a source derives', () => {
  it('follow the job schema rule, so latest --source can name every one', () => {
    for (const [raw, expected] of [
      ['my app', 'my-app'],
      ['café', 'caf-'],
      ['.hidden', 'hidden'],
      ['data', 'data'],
      ['___', 'root'],
      ['', 'root'],
      ['x'.repeat(300), 'x'.repeat(128)],
    ] as const) {
      const name = lineageNameFrom(raw, 'root');
      assert.equal(name, expected);
      parseJobData('restore', { v: 1, snapshot: 'latest', source: name, target: 'dir:///srv/x' });
    }
  });

  it('are what a directory source records for a folder with a space in its name', () => {
    const source = createDirSource([dirUri('/srv/my app')], {}, { checkPath() {}, stagingDir: os.tmpdir() });
    assert.equal(source.descriptor.name, 'my-app');
  });
});

describe('a lineage named after its source', () => {
  it('never takes in another source of the same name unless the job names the lineage', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-lineage-'));
    try {
      const repo = `file://${root}/repo`;
      for (const parent of ['a', 'b']) await mkdir(path.join(root, parent, 'src'), { recursive: true });
      await writeFile(path.join(root, 'a', 'src', 'f'), 'a');
      await writeFile(path.join(root, 'b', 'src', 'f'), 'b');

      assert.equal((await cli(['snapshot', `dir://${root}/a/src`, '--repo', repo, '--local'])).code, 0);
      assert.equal((await cli(['snapshot', `dir://${root}/a/src/`, '--repo', repo, '--local'])).code, 0, 'the same directory again');
      const other = await cli(['snapshot', `dir://${root}/b/src`, '--repo', repo, '--local']);
      assert.equal(other.code, 2);
      assert.match(other.stderr, /lineage "src" \(named after the source\) already holds snapshots of dir:\/\/\S+\/a\/src\/?, not dir:\/\/\S+\/b\/src; give this source a lineage of its own with --name/);

      assert.equal((await cli(['snapshot', `dir://${root}/b/src`, '--repo', repo, '--local', '--name', 'src-b'])).code, 0);
      assert.equal((await cli(['snapshot', `dir://${root}/b/src`, '--repo', repo, '--local', '--name', 'src'])).code, 0, 'on purpose');
      const listed = JSON.parse((await cli(['ls', '--repo', repo, '--json'])).stdout) as { source: { name: string } }[];
      assert.deepEqual(listed.map((s) => s.source.name).sort(), ['src', 'src', 'src', 'src-b']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
