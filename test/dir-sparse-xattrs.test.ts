import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { dirUri } from '../shared/kinds/dir/dir-uri.js';
import { setXattr } from '../shared/fsutil/native-fs.js';
import { readXattrs } from '../shared/fsutil/xattrs.js';
import { nullProgress } from '../shared/progress.js';
import { nullNotices } from '../shared/kinds/notices.js';
import { createDirSource } from '../shared/kinds/dir/dir-source.js';
import type { EndpointContext } from '../shared/kinds/source.js';
import { createDirTarget } from '../shared/kinds/dir/dir-target.js';
import type { RestoreResult } from '../shared/kinds/restore-target.js';
import { manifestFor } from './helpers/archive-fixtures.js';
import { assertTreesEqual } from './helpers/tree.js';
import { PROJECT_ROOT, sh, useTestWorker, type TestEnvironment } from './helpers/worker-fixture.js';
import { snapworkerArgs } from './helpers/compiled-cli.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const context: EndpointContext = { checkPath() {}, stagingDir: os.tmpdir() };
const isRoot = process.getuid?.() === 0;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, snapworkerArgs(...args), { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A sparse file of `size` bytes holding `blocks` at the given offsets (distinct bytes each). */
function writeSparse(file: string, size: number, offsets: number[], blockBytes = 4 * KiB): void {
  const fd = openSync(file, 'w');
  try {
    ftruncateSync(fd, size);
    offsets.forEach((offset, i) => writeSync(fd, Buffer.alloc(blockBytes, (i % 250) + 1), 0, blockBytes, offset));
  } finally {
    closeSync(fd);
  }
}

const allocated = (file: string): number => lstatSync(file).blocks * 512;

/** Every node's extended attributes under `root`, by relative path, values in hex. */
async function xattrsOfTree(root: string): Promise<Record<string, Record<string, string>>> {
  const result: Record<string, Record<string, string>> = {};
  const visit = async (rel: string): Promise<void> => {
    const abs = path.join(root, rel);
    const xattrs = readXattrs(abs);
    if (xattrs) result[rel || '.'] = Object.fromEntries(xattrs.map((x) => [x.name, x.value.toString('hex')]));
    if (lstatSync(abs).isDirectory()) for (const name of await readdir(abs)) await visit(path.join(rel, name));
  };
  await visit('');
  return result;
}

/** A tree with attributes on a directory, files (one sparse) and, as root, a symlink (the root itself is not an entry). */
function makeXattrTree(root: string): void {
  mkdirSync(path.join(root, 'dir'), { recursive: true });
  writeFileSync(path.join(root, 'dir', 'plain.txt'), 'hello\n');
  writeSparse(path.join(root, 'sparse.img'), 64 * MiB, [0, 40 * MiB]);
  symlinkSync('dir/plain.txt', path.join(root, 'link'));
  setXattr(path.join(root, 'dir'), 'user.dir', Buffer.from('d'), true);
  setXattr(path.join(root, 'dir', 'plain.txt'), 'user.binary', Buffer.from([0, 0xff, 0x0a, 0x3d, 0x80]), true);
  setXattr(path.join(root, 'dir', 'plain.txt'), 'user.mime_type', Buffer.from('text/plain'), true);
  setXattr(path.join(root, 'sparse.img'), 'user.big', Buffer.alloc(3000, 0x41), true);
  if (isRoot) {
    setXattr(path.join(root, 'link'), 'trusted.overlay.origin', Buffer.from([1, 2, 3]), true);
    setXattr(path.join(root, 'dir'), 'trusted.t', Buffer.from('x'), true);
  }
}

describe('sparse files and extended attributes of directories', () => {
  const fixture = useTestWorker();
  let environment: TestEnvironment;
  before(() => {
    environment = fixture.environment;
  });

  it('keeps a 200 MiB file with fifty 4 KiB data blocks sparse through --local snapshot and restore, and GNU tar extracts it sparse too', async () => {
    const root = path.join(environment.root, 'cli-sparse');
    const source = path.join(root, 'src');
    mkdirSync(source, { recursive: true });
    const file = path.join(source, 'disk.img');
    writeSparse(file, 200 * MiB, Array.from({ length: 50 }, (_, i) => i * 4 * MiB + (i % 2) * 8 * KiB));
    assert.equal(allocated(file), 200 * KiB);
    const repo = `file://${path.join(root, 'repo')}`;

    const snap = await cli(['snapshot', `dir://${source}`, '--repo', repo, '--local', '--json']);
    assert.equal(snap.code, 0, snap.stderr);
    const record = JSON.parse(snap.stdout) as SnapshotRecord;
    assert.equal(record.stats.rawBytes, 200 * MiB);
    assert.ok(record.archive!.size < 64 * KiB, `archive holds only the data: ${record.archive!.size} bytes`);

    const target = path.join(root, 'restored');
    const restored = await cli(['restore', record.id, `dir://${target}`, '--repo', repo, '--local', '--json']);
    assert.equal(restored.code, 0, restored.stderr);
    await assertTreesEqual(source, target);
    const back = path.join(target, 'disk.img');
    assert.ok(allocated(back) <= allocated(file) + 16 * KiB, `restored allocation ${allocated(back)} vs ${allocated(file)}`);

    const gnu = path.join(root, 'gnu');
    mkdirSync(gnu);
    const archive = path.join(environment.repoDir, '..', 'cli-sparse', 'repo', record.archive!.key);
    const extracted = await sh(`zstd -dc '${archive}' | tar -x && sha256sum -c --quiet SHA256SUMS && cmp data/disk.img '${file}' && stat -c %b data/disk.img`, gnu);
    assert.equal(extracted.code, 0, extracted.output);
    assert.ok(Number(extracted.output.trim()) * 512 <= allocated(file) + 16 * KiB, `GNU tar allocated ${extracted.output}`);
  });

  it('reads only the data of a 2 GiB file with a tiny tail, never its hole', async () => {
    const root = path.join(environment.root, 'tail');
    mkdirSync(root);
    const file = path.join(root, 'big');
    writeFileSync(file, 'head');
    writeSparse(path.join(root, 'big2'), 2 * 1024 * MiB + 100, [2 * 1024 * MiB], 100);
    const signal = new AbortController().signal;
    const source = createDirSource([dirUri(root)], {}, context);
    for await (const entry of source.entries({ signal, progress: nullProgress, notices: nullNotices })) {
      if (entry.path !== 'data/big2') {
        assert.equal(entry.sparse, undefined, `${entry.path} is not sparse`);
        continue;
      }
      assert.deepEqual(entry.sparse, [{ offset: 2 * 1024 * MiB, length: 100 }]);
      const bytes = Buffer.concat(await (await entry.open!()).toArray());
      assert.deepEqual(bytes, Buffer.alloc(100, 1));
    }
  });

  it('writes a dense file of zeros back dense: allocation comes back as it was', async () => {
    const root = path.join(environment.root, 'dense');
    mkdirSync(root);
    writeFileSync(path.join(root, 'zeros'), Buffer.alloc(2 * MiB));
    const target = path.join(environment.root, 'dense-restored');
    const signal = new AbortController().signal;
    const source = createDirSource([dirUri(root)], {}, context);
    const session = await createDirTarget([dirUri(target)], {}, context).begin(manifestFor(source), { signal, progress: nullProgress, replace: false });
    for await (const entry of source.entries({ signal, progress: nullProgress, notices: nullNotices })) await session.write(entry, await entry.open?.());
    await session.commit();
    assert.equal(allocated(path.join(target, 'zeros')), allocated(path.join(root, 'zeros')));
  });

  it('round-trips extended attributes of directories, files and symlinks through the queue, binary values included', async () => {
    const source = path.join(environment.root, 'xattr-src');
    makeXattrTree(source);
    const before = await xattrsOfTree(source);
    assert.equal(before['dir/plain.txt']?.['user.binary'], '00ff0a3d80');
    const { queue, events } = environment;
    const record = (await (await queue.add('snapshot', { v: 1, source: `dir://${source}` })).waitUntilFinished(events, 60_000)) as SnapshotRecord;
    const target = path.join(environment.root, 'xattr-restored');
    const result = (await (await queue.add('restore', { v: 1, snapshot: record.id, target: `dir://${target}` })).waitUntilFinished(events, 60_000)) as RestoreResult;
    assert.equal(result.xattrsNotRestored, undefined);
    assert.deepEqual(await xattrsOfTree(target), before);
    await assertTreesEqual(source, target);
    assert.ok(allocated(path.join(target, 'sparse.img')) <= allocated(path.join(source, 'sparse.img')) + 16 * KiB);
    await rm(target, { recursive: true });
  });

  it('restores into a filesystem without xattr support (ramfs), naming every attribute it could not keep', async (t) => {
    const mountPoint = path.join(environment.root, 'ramfs');
    mkdirSync(mountPoint);
    const mounted = await sh(`mount -t ramfs ramfs '${mountPoint}'`);
    if (mounted.code !== 0) return t.skip(`cannot mount a ramfs here: ${mounted.output.trim()}`);
    try {
      const source = path.join(environment.root, 'xattr-src-ramfs');
      makeXattrTree(source);
      const { queue, events } = environment;
      const record = (await (await queue.add('snapshot', { v: 1, source: `dir://${source}` })).waitUntilFinished(events, 60_000)) as SnapshotRecord;
      const target = path.join(mountPoint, 'restored');
      const result = (await (await queue.add('restore', { v: 1, snapshot: record.id, target: `dir://${target}` })).waitUntilFinished(events, 60_000)) as RestoreResult;
      const expected = Object.entries(await xattrsOfTree(source)).flatMap(([rel, xattrs]) =>
        Object.keys(xattrs).map((name) => `data/${rel}: extended attribute ${name} not restored (EOPNOTSUPP)`),
      );
      assert.deepEqual({ ...result.xattrsNotRestored, first: [...result.xattrsNotRestored!.first].sort() }, { count: expected.length, first: expected.sort() });
      assert.deepEqual(readFileSync(path.join(target, 'dir', 'plain.txt'), 'utf8'), 'hello\n');
    } finally {
      await sh(`umount '${mountPoint}'`);
    }
  });

  it('restores what it can and names each attribute the target cannot keep (user.* on a symlink) in the result', async () => {
    const target = path.join(environment.root, 'not-kept');
    const signal = new AbortController().signal;
    const source = createDirSource([dirUri(environment.root)], {}, context);
    const session = await createDirTarget([dirUri(target)], {}, context).begin(manifestFor(source), { signal, progress: nullProgress, replace: false });
    const mtime = new Date('2024-01-01T00:00:00Z');
    await session.write({ path: 'data/f', type: 'file', mode: 0o644, mtime, size: 0, xattrs: [{ name: 'user.ok', value: Buffer.from('1') }] }, undefined);
    await session.write({ path: 'data/l', type: 'symlink', mode: 0o777, mtime, size: 0, linkTarget: 'f', xattrs: [{ name: 'user.refused', value: Buffer.from('1') }] }, undefined);
    const result = await session.commit();
    assert.deepEqual(result.xattrsNotRestored, { count: 1, first: ['data/l: extended attribute user.refused not restored (EPERM)'] });
    assert.deepEqual(readFileSync(path.join(target, 'f')), Buffer.alloc(0));
    assert.equal(readXattrs(path.join(target, 'f'))?.[0]?.name, 'user.ok');
  });
});
