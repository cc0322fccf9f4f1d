import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setXattr } from '../shared/fsutil/native-fs.js';
import { readXattrs, writeXattrs } from '../shared/fsutil/xattrs.js';

const dir = mkdtempSync(path.join(tmpdir(), 'snapworker-xattrs-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;

describe('extended attributes of a node', () => {
  it('reads every attribute sorted by name with exact bytes, and undefined when there are none', () => {
    const file = path.join(dir, 'file');
    writeFileSync(file, 'x');
    assert.equal(readXattrs(file), undefined);
    setXattr(file, 'user.z', Buffer.from([0xff, 0]), true);
    setXattr(file, 'user.a', Buffer.alloc(0), true);
    assert.deepEqual(readXattrs(file), [
      { name: 'user.a', value: Buffer.alloc(0) },
      { name: 'user.z', value: Buffer.from([0xff, 0]) },
    ]);
  });

  it('names an attribute whose name is not UTF-8 instead of dropping it in silence', () => {
    const file = path.join(dir, 'odd-name');
    writeFileSync(file, 'x');
    // The addon takes a Buffer for a name whose bytes are not UTF-8 (as a shell user can set).
    setXattr(file, Buffer.from([...Buffer.from('user.'), 0xff, 0xfe]) as unknown as string, Buffer.from('v'), true);
    setXattr(file, 'user.ok', Buffer.from('v'), true);
    const leftOut: string[] = [];
    const xattrs = readXattrs(file, (name, reason) => leftOut.push(`${name}: ${reason}`));
    assert.deepEqual(xattrs?.map((x) => x.name), ['user.ok']);
    assert.deepEqual(leftOut, ['user.\uFFFD\uFFFD: extended attribute name is not UTF-8; not stored']);
  });

  it("reads a symlink's own attributes, never its target's", () => {
    const target = path.join(dir, 'target');
    writeFileSync(target, 'x');
    setXattr(target, 'user.target', Buffer.from('t'), true);
    const link = path.join(dir, 'link');
    symlinkSync('target', link);
    assert.equal(readXattrs(link), undefined);
    if (isRoot) {
      setXattr(link, 'trusted.own', Buffer.from('l'), true);
      assert.deepEqual(readXattrs(link), [{ name: 'trusted.own', value: Buffer.from('l') }]);
    }
  });

  it('writes what the node can keep, tells which it cannot and why, and throws for anything else', () => {
    const link = path.join(dir, 'link2');
    symlinkSync('target', link);
    const refused: string[] = [];
    writeXattrs(link, [{ name: 'user.no', value: Buffer.from('1') }, ...(isRoot ? [{ name: 'trusted.yes', value: Buffer.from('2') }] : [])], (name, reason) =>
      refused.push(`${name} ${reason}`),
    );
    assert.deepEqual(refused, ['user.no EPERM']);
    if (isRoot) assert.deepEqual(readXattrs(link), [{ name: 'trusted.yes', value: Buffer.from('2') }]);
    assert.throws(() => writeXattrs(path.join(dir, 'missing'), [{ name: 'user.a', value: Buffer.from('1') }], () => {}), { code: 'ENOENT' });
  });
});
