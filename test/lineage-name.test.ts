import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, it } from 'node:test';
import { parseJobData } from '../jobs/validate.js';
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
