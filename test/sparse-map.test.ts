import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, lstatSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { findDataSegments, mayHaveHoles } from '../shared/fsutil/sparse-map.js';

const dir = mkdtempSync(path.join(tmpdir(), 'snapworker-sparse-map-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const KiB = 1024;
const MiB = 1024 * KiB;

function sparseFile(name: string, size: number, blocks: number[]): string {
  const file = path.join(dir, name);
  const fd = openSync(file, 'w');
  ftruncateSync(fd, size);
  for (const offset of blocks) writeSync(fd, Buffer.alloc(4 * KiB, 1), 0, 4 * KiB, offset);
  closeSync(fd);
  return file;
}

describe('finding the data segments of a file', () => {
  it('lists the data of a sparse file, in order, from the filesystem map', () => {
    const file = sparseFile('three', 16 * MiB, [0, 5 * MiB, 12 * MiB]);
    assert.ok(mayHaveHoles(lstatSync(file)));
    assert.deepEqual(findDataSegments(file, 16 * MiB, 100), [
      { offset: 0, length: 4 * KiB },
      { offset: 5 * MiB, length: 4 * KiB },
      { offset: 12 * MiB, length: 4 * KiB },
    ]);
  });

  it('finds no segment in a file that is all hole, and none past the size it was listed with', () => {
    assert.deepEqual(findDataSegments(sparseFile('hole', 8 * MiB, []), 8 * MiB, 100), []);
    assert.deepEqual(findDataSegments(sparseFile('grown', 8 * MiB, [6 * MiB]), 4 * MiB, 100), []);
    assert.deepEqual(findDataSegments(sparseFile('cut', 8 * MiB, [4 * MiB - 4 * KiB]), 4 * MiB - KiB, 100), [{ offset: 4 * MiB - 4 * KiB, length: 3 * KiB }]);
  });

  it('leaves dense files and files with more segments than allowed to be read whole', () => {
    const dense = path.join(dir, 'dense');
    writeFileSync(dense, Buffer.alloc(64 * KiB, 7));
    assert.equal(mayHaveHoles(lstatSync(dense)), false);
    assert.equal(findDataSegments(dense, 64 * KiB, 100), undefined);
    assert.equal(findDataSegments(sparseFile('many', 4 * MiB, [0, MiB, 2 * MiB, 3 * MiB]), 4 * MiB, 3), undefined);
  });

  it('passes on why a file could not be scanned (ENOENT for one that vanished)', () => {
    assert.throws(() => findDataSegments(path.join(dir, 'missing'), 1, 1), { code: 'ENOENT' });
  });
});
