import assert from 'node:assert/strict';
import { closeSync, lstatSync, mkdtempSync, openSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  deviceNumbers,
  getXattr,
  listXattrs,
  makeNode,
  punchHole,
  seekData,
  seekHole,
  setTimesNs,
  setXattr,
} from '../shared/fsutil/native-fs.js';

const dir = mkdtempSync(path.join(tmpdir(), 'snapworker-native-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('native filesystem calls', () => {
  it('set nanosecond mtimes exactly, before 1970, after 2038 and after 2262 (past an int64 of nanoseconds), on files and on symlinks themselves', () => {
    const file = path.join(dir, 'times');
    writeFileSync(file, 'x');
    const link = path.join(dir, 'times-link');
    symlinkSync('times', link);
    for (const ns of [-304387200000000001n, 0n, 1795961425919000000n, 2208988800000000000n, 4115059200250000000n, 9223372036854775807n, 9223372036854775808n, 10413792000123456789n]) {
      setTimesNs(file, ns, ns, false);
      assert.equal(statSync(file, { bigint: true }).mtimeNs, ns);
      setTimesNs(link, 5n, ns + 1n, true);
      assert.equal(lstatSync(link, { bigint: true }).mtimeNs, ns + 1n);
      assert.equal(statSync(file, { bigint: true }).mtimeNs, ns, 'noFollow leaves the target alone');
    }
  });

  it('take names that are not UTF-8 as Buffers', () => {
    const name = Buffer.concat([Buffer.from(dir + '/caf'), Buffer.from([0xe9])]);
    writeFileSync(name, 'x');
    setTimesNs(name, 0n, 123456789n, false);
    assert.equal(statSync(name, { bigint: true }).mtimeNs, 123456789n);
  });

  it('throw errors shaped like node:fs errors, with the code, syscall and path', () => {
    assert.throws(() => setTimesNs(path.join(dir, 'missing', 'x'), 0n, 0n, false), (error: NodeJS.ErrnoException) => {
      assert.equal(error.code, 'ENOENT');
      assert.equal(error.syscall, 'utimensat');
      assert.match(error.message, /ENOENT: .*utimensat '.*missing\/x'/);
      return true;
    });
    assert.throws(() => setTimesNs(path.join(dir, 'times'), 1 as unknown as bigint, 0n, false), TypeError);
    assert.throws(() => getXattr(path.join(dir, 'times'), 'user.absent', false), { code: 'ENODATA' });
  });

  it('find data and holes in a sparse file, and punch a new hole', () => {
    const file = path.join(dir, 'sparse');
    const fd = openSync(file, 'w+');
    try {
      ftruncateSync(fd, 16 << 20);
      writeSync(fd, Buffer.alloc(4096, 1), 0, 4096, 8 << 20);
      assert.equal(seekData(fd, 0), 8 << 20);
      assert.equal(seekHole(fd, 8 << 20), (8 << 20) + 4096);
      assert.equal(seekData(fd, (8 << 20) + 4096), -1, 'no data after the last block');
      assert.equal(seekHole(fd, (8 << 20) + 4096), (8 << 20) + 4096);
      punchHole(fd, 8 << 20, 4096);
      assert.equal(seekData(fd, 0), -1);
      assert.equal(statSync(file).size, 16 << 20, 'punching keeps the size');
    } finally {
      closeSync(fd);
    }
  });

  it('make FIFOs, and split device numbers as glibc does', () => {
    const fifo = path.join(dir, 'fifo');
    makeNode(fifo, 'fifo', 0o640, 0, 0);
    const stat = lstatSync(fifo);
    assert.ok(stat.isFIFO());
    assert.deepEqual(deviceNumbers(statSync('/dev/null').rdev), { major: 1, minor: 3 });
    // glibc's makedev for major 0x12345678, minor 0xabc9a: low 12 major bits at 8, the rest at 44; low 8 minor bits at 0, the rest at 20.
    const dev = (0x678n << 8n) | (0x12345000n << 32n) | 0x9an | (0xabc00n << 12n);
    assert.deepEqual(deviceNumbers(dev), { major: 0x12345678, minor: 0xabc9a });
  });

  it('read and write extended attributes of files and of symlinks themselves', (t) => {
    const file = path.join(dir, 'xattr');
    writeFileSync(file, 'x');
    try {
      setXattr(file, 'user.snapworker', Buffer.from([0, 1, 2, 255]), false);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOTSUP') return t.skip('this filesystem has no user xattrs');
      throw error;
    }
    assert.deepEqual(listXattrs(file, false), ['user.snapworker']);
    assert.deepEqual(getXattr(file, 'user.snapworker', false), Buffer.from([0, 1, 2, 255]));
    const link = path.join(dir, 'xattr-link');
    symlinkSync('xattr', link);
    assert.deepEqual(listXattrs(link, false), ['user.snapworker'], 'follows by default');
    assert.deepEqual(listXattrs(link, true), [], "a symlink's own list");
  });
});
