/**
 * Partial reads of archive snapshots in a file repository: the torture tree listed exactly from
 * the entry index, partial restores (a sub-path, globs) that write nothing else, stock
 * `zstd -d | tar -x && sha256sum -c` on an archive of several frames, and a tampered entry index
 * or seek table refused in one line.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Repository } from '../shared/catalog/repository.js';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { IntegrityError } from '../shared/errors.js';
import { encodeName } from '../shared/fsutil/byte-name.js';
import { archiveFormat } from '../shared/formats/archive/archive-format.js';
import type { ListedEntry } from '../shared/formats/snapshot-format.js';
import { newSnapshotId } from '../shared/ids.js';
import { createDirSource } from '../shared/kinds/dir/dir-source.js';
import { createDirTarget } from '../shared/kinds/dir/dir-target.js';
import type { EndpointContext } from '../shared/kinds/source.js';
import { restoreSnapshot } from '../shared/pipeline/restore-snapshot.js';
import type { RestoreSelection } from '../shared/pipeline/restore-selection.js';
import { takeSnapshot } from '../shared/pipeline/take-snapshot.js';
import { nullProgress } from '../shared/progress.js';
import { FsDriver } from '../shared/storage/fs/fs-driver.js';
import { cli } from './helpers/cli.js';
import { describeTortureTree, makeTortureTree } from './helpers/torture-tree.js';

const signal = new AbortController().signal;

async function listAll(repository: Repository, record: SnapshotRecord): Promise<ListedEntry[]> {
  const listing = await archiveFormat.listEntries!({ repository, record, signal, progress: nullProgress });
  assert.ok(listing, 'the snapshot has an entry index');
  const entries: ListedEntry[] = [];
  for await (const entry of listing) entries.push(entry);
  return entries;
}

/** Relative paths of everything under `root`, sorted. */
async function treePaths(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).sort();
}

describe('partial reads of archive snapshots', () => {
  let root: string;
  let repository: Repository;
  const context: EndpointContext = { checkPath: () => {}, stagingDir: '' };
  const snapshot = async (dir: string) =>
    takeSnapshot({ id: newSnapshotId(), source: createDirSource([new URL(`dir://${dir}`)], { name: path.basename(dir) }, context), repository, labels: {}, compression: 'zstd', signal, progress: nullProgress });

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-partial-'));
    context.stagingDir = root;
    repository = new Repository('partial', new FsDriver({ root: path.join(root, 'repo') }));
    await repository.init();
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('lists the torture tree exactly: paths, types, modes, sizes, mtimes, link targets, xattr names, file SHA-256s', async () => {
    const source = path.join(root, 'torture');
    const tree = await makeTortureTree(source);
    const record = await snapshot(source);
    const facts = describeTortureTree(source);
    for (const skipped of tree.unsupported) facts.delete(skipped.toString('hex'));
    const listed = await listAll(repository, record);
    assert.equal(listed.length, record.stats.entries);
    const seen = new Set<string>();
    for (const entry of listed) {
      if (entry.path === 'data') continue;
      const key = encodeName(entry.path.slice('data/'.length)).toString('hex');
      const fact = facts.get(key);
      const name = entry.path;
      assert.ok(fact, `${name} is in the tree`);
      seen.add(key);
      assert.equal(entry.mode, fact.mode, `${name}: mode`);
      assert.equal(entry.mtimeNs, fact.mtimeNs, `${name}: mtime`);
      if (entry.type === 'hardlink') {
        // The inode's attributes and content belong to the entry it links to.
        assert.equal(fact.type, 'file', `${name}: a hard link to a file`);
        assert.ok(fact.hardLinkGroup.split(' | ').includes(encodeName(entry.linkTarget!.slice('data/'.length)).toString('latin1')), `${name}: link target`);
        continue;
      }
      assert.deepEqual((entry.xattrs ?? []).map((x) => x.name).sort(), Object.keys(fact.xattrs).sort(), `${name}: xattr names`);
      assert.equal(entry.type, fact.type, `${name}: type`);
      if (entry.type === 'file') {
        assert.equal(BigInt(entry.size), fact.size, `${name}: size`);
        assert.equal(entry.sha256, fact.content, `${name}: sha256`);
      }
      if (entry.type === 'symlink') assert.equal(encodeName(entry.linkTarget!).toString('hex'), fact.content, `${name}: target`);
    }
    assert.deepEqual([...facts.keys()].filter((k) => !seen.has(k)), [], 'every entry of the tree is listed');
  });

  describe('of a small tree', () => {
    let source: string;
    let record: SnapshotRecord;
    before(async () => {
      source = path.join(root, 'site');
      for (const dir of ['etc/app', 'etc/other', 'var/log', 'empty']) await mkdir(path.join(source, dir), { recursive: true });
      for (const file of ['etc/app/a.conf', 'etc/app/b.txt', 'etc/other/c.conf', 'var/log/d.log', 'top.conf']) await writeFile(path.join(source, file), `${file}\n`);
      // Over two frames of tar, so a selection can skip some.
      await writeFile(path.join(source, 'var/big.bin'), randomBytes(9 * 1024 * 1024));
      record = await snapshot(source);
    });

    const restore = async (name: string, selection: RestoreSelection) => {
      const target = path.join(root, name);
      await restoreSnapshot({ repository, record, target: createDirTarget([new URL(`dir://${target}`)], {}, context), replace: false, selection, signal, progress: nullProgress });
      return target;
    };

    it('restores a sub-path as the target root and writes nothing else', async () => {
      const target = await restore('sub', { subPath: '/etc/app' });
      assert.deepEqual(await treePaths(target), ['a.conf', 'b.txt']);
      assert.equal(await readFile(path.join(target, 'a.conf'), 'utf8'), 'etc/app/a.conf\n');
    });

    it('restores what globs include, with their parent directories, less what they exclude, and nothing else', async () => {
      const target = await restore('globs', { include: ['**/*.conf'], exclude: ['etc/other'] });
      assert.deepEqual(await treePaths(target), ['etc', 'etc/app', 'etc/app/a.conf', 'top.conf']);
      const big = await restore('big', { include: ['var/big.bin'] });
      assert.deepEqual(await readFile(path.join(big, 'var/big.bin')), await readFile(path.join(source, 'var/big.bin')));
      assert.deepEqual(await treePaths(big), ['var', 'var/big.bin']);
    });

    it('refuses a sub-path that is no directory of the snapshot', async () => {
      await assert.rejects(restore('none', { subPath: '/nope' }), /^InvalidInputError: restore: the snapshot has no directory "\/nope"$|restore: the snapshot has no directory "\/nope"/);
      await assert.rejects(restore('file', { subPath: '/top.conf' }), /sub-path "\/top\.conf" is a file, not a directory/);
    });

    it('refuses include/exclude that select nothing in one line naming them, and leaves the target as it was', async () => {
      await assert.rejects(restore('nomatch', { include: ['**/*.yaml'] }), { message: 'restore: the selection (include "**/*.yaml") matches nothing in the snapshot; nothing restored (globs are relative to the snapshot root: "etc/**" for what "files" lists as /etc/…)' });
      await assert.rejects(restore('slash', { include: ['/etc/**'] }), { message: 'include pattern "/etc/**" must be relative to the root: "etc/**"' });
      await assert.rejects(stat(path.join(root, 'nomatch')), 'no target made');
      await assert.rejects(restore('nomatch', { subPath: '/etc', include: ['var/**'], exclude: ['x'] }), /restore: the selection \(include "var\/\*\*", exclude "x"\) matches nothing in "\/etc" of the snapshot/);
      const kept = path.join(root, 'kept');
      await mkdir(kept);
      await writeFile(path.join(kept, 'mine'), 'mine\n');
      const refused = restoreSnapshot({ repository, record, target: createDirTarget([new URL(`dir://${kept}`)], {}, context), replace: true, selection: { exclude: ['**'] }, signal, progress: nullProgress });
      await assert.rejects(refused, /the selection \(exclude "\*\*"\) matches nothing/);
      assert.deepEqual(await treePaths(kept), ['mine'], 'the target is untouched');
      assert.deepEqual(await treePaths(await restore('empty-dir', { subPath: '/empty' })), [], 'an empty sub-path directory is a selection, not a mistake');
    });

    it('writes an archive of several frames that stock zstd -d | tar -x && sha256sum -c still reads', async () => {
      assert.ok(record.archive!.seekTable, 'the record names the seek table');
      assert.ok(record.archive!.seekTable.size > 17 + 8, 'more than one frame');
      const out = path.join(root, 'stock');
      await mkdir(out);
      execFileSync('sh', ['-c', `zstd -dc < "${path.join(root, 'repo', record.archive!.key)}" | tar -x -C "${out}" && cd "${out}" && sha256sum --quiet -c SHA256SUMS`]);
      assert.deepEqual(await readFile(path.join(out, 'data/var/big.bin')), await readFile(path.join(source, 'var/big.bin')));
    });

    it('lists, dumps and partially restores from the command line', async () => {
      const repo = `file://${path.join(root, 'repo')}`;
      const long = await cli(['files', record.id, '/etc/app', '--long', '--repo', repo]);
      assert.equal(long.code, 0, long.stderr);
      assert.match(long.stdout, /^drwx\S+ +0 \S+ \S+ \/etc\/app\n-rw\S+ +15 \S+ \S+ \/etc\/app\/a\.conf\n/);
      const dumped = await cli(['dump', record.id, '/etc/app/b.txt', '--repo', repo]);
      assert.equal(dumped.stdout, 'etc/app/b.txt\n');
      const target = path.join(root, 'cli-sub');
      const restored = await cli(['restore', `${record.id}:/etc`, `dir://${target}`, '--exclude', 'etc/other', '--local', '--repo', repo]);
      assert.equal(restored.code, 0, restored.stderr);
      assert.deepEqual(await treePaths(target), ['app', 'app/a.conf', 'app/b.txt']);
      const refused = await cli(['files', record.id, '--long', '--json', '--repo', repo]);
      assert.equal(refused.code, 2);
      assert.equal(refused.stderr, 'snapworker: files: --long and --json exclude each other (--json has every field --long shows)\n');
    });

    it('refuses a tampered entry index or seek table in one line', async () => {
      const indexFile = path.join(root, 'repo', record.archive!.index!.key);
      const original = await readFile(indexFile);
      const damaged = Buffer.from(original);
      damaged[damaged.length >> 1]! ^= 0x01;
      await writeFile(indexFile, damaged);
      try {
        await assert.rejects(listAll(repository, record), (err: Error) => err instanceof IntegrityError && /entry index .* differs from its record/.test(err.message) && !err.message.includes('\n'));
      } finally {
        await writeFile(indexFile, original);
      }
      const archiveFile = path.join(root, 'repo', record.archive!.key);
      const archive = await readFile(archiveFile);
      const tampered = Buffer.from(archive);
      tampered[record.archive!.seekTable!.offset + 8]! ^= 0x01; // the first frame's compressed size
      await writeFile(archiveFile, tampered);
      try {
        const opening = archiveFormat.open({ repository, record, signal, progress: nullProgress, select: (p) => p === 'data/top.conf' });
        await assert.rejects(opening, (err: Error) => err instanceof IntegrityError && /seek table .* differs from its record/.test(err.message) && !err.message.includes('\n'));
      } finally {
        await writeFile(archiveFile, archive);
      }
    });
  });
});
