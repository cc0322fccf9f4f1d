import assert from 'node:assert/strict';
import { nullNotices, type EntryNotice } from '../shared/kinds/notices.js';
import { manifestFor } from './helpers/archive-fixtures.js';
import { execFileSync } from 'node:child_process';
import { open, mkdtemp, readdir, readFile, rm, stat, truncate, appendFile, writeFile, lstat, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { EntryHeader, SourceEntry } from '../shared/formats/archive/archive-entry.js';
import { IntegrityError, InvalidInputError, UnsafePathError } from '../shared/errors.js';
import { dirUri } from '../shared/kinds/dir/dir-uri.js';
import { asyncTreeIo, syncTreeIo } from '../shared/fsutil/tree-io.js';
import { nullProgress } from '../shared/progress.js';
import { createDirSource, createDirSourceFactory, DirSource } from '../shared/kinds/dir/dir-source.js';
import type { DirSourceParams } from '../shared/kinds/dir/index.js';
import type { EndpointContext, Source, SourceParams } from '../shared/kinds/source.js';
import { createDirTarget } from '../shared/kinds/dir/dir-target.js';
import type { RestoreResult, RestoreSession } from '../shared/kinds/restore-target.js';
import { makeSocket } from './helpers/torture-tree.js';
import { assertTreesEqual, describeTree, dir, file, makeTree, symlink } from './helpers/tree.js';

const context: EndpointContext = { checkPath() {}, stagingDir: os.tmpdir() };
/** The round trips compare modes exactly, setuid bits included. */
const setuidContext: EndpointContext = { ...context, restoreSetuid: true };
const OLD = new Date('2003-04-05T06:07:08.123Z');
const OLDER = new Date('1999-12-31T23:59:59.500Z');

let scratch: string;
before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'snapworker-dir-'));
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

let counter = 0;
/** A fresh, not yet existing path under the scratch directory. */
function fresh(name = 'tree'): string {
  counter += 1;
  return path.join(scratch, `${name}-${counter}`);
}

function sourceOf(root: string, params: SourceParams & DirSourceParams = {}, io: 'sync' | 'async' = 'sync'): Source {
  return createDirSourceFactory({ io })([dirUri(root)], params, context);
}


async function listEntries(source: Source): Promise<SourceEntry[]> {
  const entries: SourceEntry[] = [];
  for await (const entry of source.entries({ signal: new AbortController().signal, progress: nullProgress, notices: nullNotices })) entries.push(entry);
  return entries;
}

/** Feeds every entry of `source` straight into a restore session at `targetPath` and commits. */
async function restore(source: Source, targetPath: string, replace = false, endpoints = setuidContext): Promise<RestoreResult> {
  const signal = new AbortController().signal;
  const target = createDirTarget([dirUri(targetPath)], {}, endpoints);
  const session = await target.begin(manifestFor(source), { signal, progress: nullProgress, replace });
  try {
    for await (const entry of source.entries({ signal, progress: nullProgress, notices: nullNotices })) {
      await session.write(entry, await entry.open?.());
    }
  } catch (err) {
    await session.abort();
    throw err;
  }
  return session.commit();
}

async function beginAt(targetPath: string, replace = false, signal = new AbortController().signal): Promise<RestoreSession> {
  const target = createDirTarget([dirUri(targetPath)], {}, context);
  return target.begin(manifestFor(sourceOf(scratch)), { signal, progress: nullProgress, replace });
}

function header(entryPath: string, type: EntryHeader['type'], extra: Partial<EntryHeader> = {}): EntryHeader {
  return { path: entryPath, type, mode: type === 'directory' ? 0o755 : 0o644, mtime: OLD, size: 0, ...extra };
}

/** Names in `dir` that look like our staging or replaced trees. */
async function leftovers(parent: string): Promise<string[]> {
  return (await readdir(parent)).filter((name) => name.includes('.snapworker-'));
}

const richTree = {
  'empty-dir': dir({}, { mtime: OLDER }),
  'empty-file': file('', { mtime: OLD }),
  'run.sh': file('#!/bin/sh\necho hi\n', { mode: 0o755, mtime: OLD }),
  'secret.key': file('k', { mode: 0o600, mtime: OLDER }),
  'setgid-dir': dir({ x: 'x' }, { mode: 0o2750, mtime: OLD }),
  'read-only': dir({ 'locked.txt': file('locked', { mode: 0o444, mtime: OLD }) }, { mode: 0o555, mtime: OLDER }),
  'with space & ünïcødé ✓': dir({ 'naïve file.txt': file('unicode', { mtime: OLD }) }, { mtime: OLD }),
  '.hidden': file('dot', { mtime: OLD }),
  nested: dir(
    {
      deeper: dir({ deepest: dir({ 'leaf.bin': file(Buffer.from([0, 1, 2, 255])) }, { mtime: OLD }) }, { mtime: OLDER }),
      'medium.bin': file(Buffer.alloc(3 * 1024 * 1024 + 17, 7), { mtime: OLD }),
    },
    { mode: 0o750, mtime: OLD },
  ),
  'link-to-file': symlink('run.sh', { mtime: OLDER }),
  'link-to-dir': symlink('nested/deeper', { mtime: OLD }),
  'dangling-link': symlink('../nowhere/at/all', { mtime: OLD }),
  'absolute-link': symlink('/etc/hostname'),
};

describe('directory source and directory target', () => {
  for (const io of ['sync', 'async'] as const) {
    it(`round-trip a tree exactly with ${io} reads: types, content, modes, link targets, mtimes of files and directories`, async () => {
      const original = fresh();
      await makeTree(original, richTree);
      const restored = fresh('restored');
      const result = await restore(sourceOf(original, {}, io), restored);
      await assertTreesEqual(original, restored);
      const described = await describeTree(original);
      assert.equal(result.entries, described.size);
      assert.equal(result.target, dirUri(restored).href);
      assert.deepEqual(await leftovers(scratch), []);
    });
  }

  it('yields directories before their children in sorted order, without the root, links verbatim', async () => {
    const root = fresh();
    await makeTree(root, { b: dir({ z: 'z', a: 'a' }), a: 'a', c: symlink('../../outside') });
    const source = sourceOf(root, { name: 'app' });
    const entries = await listEntries(source);
    assert.deepEqual(
      entries.map((e) => [e.path, e.type]),
      [
        ['data/a', 'file'],
        ['data/b', 'directory'],
        ['data/b/a', 'file'],
        ['data/b/z', 'file'],
        ['data/c', 'symlink'],
      ],
    );
    assert.equal(entries[4]!.linkTarget, '../../outside');
    assert.equal(entries[0]!.size, 1);
    assert.deepEqual(source.descriptor, { kind: 'dir', uri: dirUri(root).href, name: 'app', details: { include: [], exclude: [] } });
    assert.equal(sourceOf(root).descriptor.name, path.basename(root));
  });

  it('prunes excluded subtrees and keeps included paths together with their parent directories', async () => {
    const root = fresh();
    await makeTree(root, {
      '.env': 'secret',
      cache: dir({ big: 'x', sub: dir({ more: 'x' }) }),
      conf: dir({ 'app.conf': 'c', sub: dir({ 'db.conf': 'd', 'notes.txt': 'n' }) }),
      logs: dir({ 'a.log': 'l', 'keep.md': 'k' }),
      'README.md': 'r',
      empty: dir(),
    });
    const excluded = await listEntries(sourceOf(root, { exclude: ['cache', '**/*.log', '.env'] }));
    assert.deepEqual(
      excluded.map((e) => e.path),
      ['data/conf', 'data/conf/app.conf', 'data/conf/sub', 'data/conf/sub/db.conf', 'data/conf/sub/notes.txt', 'data/empty', 'data/logs', 'data/logs/keep.md', 'data/README.md'].sort(
        (a, b) => (a < b ? -1 : 1),
      ),
    );
    const included = await listEntries(sourceOf(root, { include: ['**/*.md', 'conf/sub', '.env'], exclude: ['**/notes.txt'] }));
    assert.deepEqual(
      included.map((e) => e.path),
      ['data/.env', 'data/README.md', 'data/conf', 'data/conf/sub', 'data/conf/sub/db.conf', 'data/logs', 'data/logs/keep.md'],
    );
    const estimate = await sourceOf(root, { include: ['conf/**'] }).estimateBytes!(new AbortController().signal);
    assert.equal(estimate, 3);
  });

  it('stores FIFOs, reports sockets as unsupported notices and counts them', async () => {
    const root = fresh();
    await makeTree(root, { a: 'a' });
    execFileSync('mkfifo', [path.join(root, 'pipe')]);
    await makeSocket(path.join(root, 'sock'));
    const warnings: string[] = [];
    const notices: EntryNotice[] = [];
    const source = createDirSourceFactory({ onWarning: (m) => warnings.push(m) })([dirUri(root)], {}, context) as DirSource;
    const entries: SourceEntry[] = [];
    for await (const entry of source.entries({ signal: new AbortController().signal, progress: nullProgress, notices: { add: (n) => notices.push(n) } })) entries.push(entry);
    assert.deepEqual(entries.map((e) => [e.path, e.type]), [['data/a', 'file'], ['data/pipe', 'fifo']]);
    assert.deepEqual(notices, [{ kind: 'unsupported', path: 'data/sock', reason: 'socket' }]);
    assert.equal(source.skipped.special, 1);
    assert.match(warnings[0]!, /sock: a socket cannot be stored/);
  });

  it('clears setuid, setgid and sticky bits on restore unless the worker allows them', async () => {
    const original = fresh();
    await makeTree(original, { s: file('x', { mode: 0o4755 }), g: dir({}, { mode: 0o2750 }), t: dir({}, { mode: 0o1777 }) });
    const cleared = fresh('cleared');
    await restore(sourceOf(original), cleared, false, context);
    const kept = fresh('kept');
    await restore(sourceOf(original), kept, false, setuidContext);
    const modes = async (root: string) => Promise.all(['s', 'g', 't'].map(async (name) => (await lstat(path.join(root, name))).mode & 0o7777));
    assert.deepEqual(await modes(cleared), [0o755, 0o750, 0o777]);
    assert.deepEqual(await modes(kept), [0o4755, 0o2750, 0o1777]);
  });

  it('refuses anything but exactly one absolute dir:// URI, and paths the context forbids', () => {
    const root = path.join(scratch, 'x');
    assert.throws(() => createDirSource([], {}, context), InvalidInputError);
    assert.throws(() => createDirSource([dirUri(root), dirUri(root)], {}, context), InvalidInputError);
    assert.throws(() => createDirSource([new URL('dir://host/x')], {}, context), InvalidInputError);
    assert.throws(() => createDirSource([new URL(`file://${root}`)], {}, context), InvalidInputError);
    assert.throws(() => createDirTarget([new URL('dir:///a//b')], {}, context), InvalidInputError);
    const strict: EndpointContext = {
      ...context,
      checkPath: (p) => {
        throw new UnsafePathError(`path ${p} is outside the allowed paths`);
      },
    };
    assert.throws(() => createDirSource([dirUri(root)], {}, strict), UnsafePathError);
    assert.throws(() => createDirTarget([dirUri(root)], {}, strict), UnsafePathError);
    assert.throws(() => sourceOf(root, { include: ['/abs'] }), InvalidInputError);
  });

  it('replaces an existing target when asked: old content gone, new content there, nothing left beside it', async () => {
    const original = fresh();
    await makeTree(original, { 'new.txt': file('new', { mtime: OLD }), d: dir({ f: 'f' }, { mtime: OLD }) });
    const existing = fresh('existing');
    await makeTree(existing, { 'old.txt': 'old', ro: dir({ 'x': 'x' }, { mode: 0o555 }) });
    await restore(sourceOf(original), existing, true);
    await assertTreesEqual(original, existing);
    assert.deepEqual(await leftovers(scratch), []);
  });

  it('refuses an existing non-empty target without replace and leaves it untouched', async () => {
    const original = fresh();
    await makeTree(original, { 'new.txt': 'new' });
    const existing = fresh('existing');
    await makeTree(existing, { 'old.txt': file('old', { mtime: OLD }) });
    const before = await describeTree(existing);
    await assert.rejects(restore(sourceOf(original), existing, false), (err: Error) => {
      assert.ok(err instanceof InvalidInputError);
      assert.match(err.message, /exists; replace it with --replace/);
      return true;
    });
    assert.deepEqual(await describeTree(existing), before);
    assert.deepEqual(await leftovers(scratch), []);
  });

  it('restores into an existing empty directory without replace', async () => {
    const original = fresh();
    await makeTree(original, { a: 'a' });
    const empty = fresh('empty');
    await mkdir(empty);
    await restore(sourceOf(original), empty);
    await assertTreesEqual(original, empty);
  });

  it('leaves the target exactly as it was and no staging directory when a restore is aborted mid-file', async () => {
    const existing = fresh('existing');
    await makeTree(existing, { 'old.txt': file('old', { mtime: OLD }), sub: dir({ x: 'x' }, { mtime: OLDER }) });
    const before = await describeTree(existing);
    const controller = new AbortController();
    const session = await beginAt(existing, true, controller.signal);
    await session.write(header('data/new', 'directory'), undefined);
    await session.write(header('data/new/file', 'file', { size: 3 }), Readable.from([Buffer.from('abc')]));
    const endless = new Readable({ read() {} });
    endless.push(Buffer.alloc(1024));
    const writing = session.write(header('data/big', 'file', { size: 1 << 30 }), endless);
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(writing);
    await session.abort();
    await session.abort();
    assert.deepEqual(await describeTree(existing), before);
    assert.deepEqual(await leftovers(scratch), []);
    await assert.rejects(session.commit());
  });

  it('ends a write waiting for bytes that never come when the restore is aborted, leaving no staging', async () => {
    const targetPath = fresh('target');
    const session = await beginAt(targetPath);
    const stalled = new Readable({ read() {} });
    stalled.push(Buffer.from('partial'));
    const writing = session.write(header('data/stalled', 'file', { size: 100 }), stalled);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await session.abort();
    await assert.rejects(writing);
    await assert.rejects(lstat(targetPath), { code: 'ENOENT' });
    assert.deepEqual(await leftovers(scratch), []);
  });

  it('refuses entries that are absolute, use .., lie outside data/ or would write through a symlink', async () => {
    const outside = fresh('outside');
    await mkdir(outside);
    const targetPath = fresh('target');
    const session = await beginAt(targetPath);
    const refusals: [EntryHeader, Readable | undefined, new (...args: never[]) => Error][] = [
      [header('data/../escape', 'file', { size: 1 }), Readable.from([Buffer.from('x')]), UnsafePathError],
      [header('data/a/../../escape', 'directory'), undefined, UnsafePathError],
      [header('/etc/escape', 'file', { size: 1 }), Readable.from([Buffer.from('x')]), IntegrityError],
      [header('data//etc', 'directory'), undefined, UnsafePathError],
      [header('other/file', 'file', { size: 1 }), Readable.from([Buffer.from('x')]), IntegrityError],
    ];
    for (const [h, body, errorClass] of refusals) {
      await assert.rejects(session.write(h, body), errorClass, h.path);
    }
    await session.write(header('data/link', 'symlink', { linkTarget: outside }), undefined);
    await assert.rejects(session.write(header('data/link/planted', 'file', { size: 1 }), Readable.from([Buffer.from('x')])), UnsafePathError);
    await assert.rejects(session.write(header('data/link/sub', 'directory'), undefined), UnsafePathError);
    await assert.rejects(session.write(header('data/link', 'file', { size: 1 }), Readable.from([Buffer.from('x')])), IntegrityError);
    await writeFile(path.join(outside, 'victim'), 'v');
    await assert.rejects(session.write(header('data/hard', 'hardlink', { linkTarget: 'data/link/victim' }), undefined), UnsafePathError);
    await assert.rejects(session.write(header('data/link/fifo', 'fifo'), undefined), UnsafePathError);
    await session.write(header('data/f', 'file', { size: 1 }), Readable.from([Buffer.from('x')]));
    await assert.rejects(session.write(header('data/f/under-a-file', 'file'), Readable.from([])), UnsafePathError);
    await assert.rejects(session.write(header('data/short', 'file', { size: 5 }), Readable.from([Buffer.from('abc')])), IntegrityError);
    await assert.rejects(session.write(header('data/long', 'file', { size: 1 }), Readable.from([Buffer.from('abc')])), IntegrityError);
    await session.abort();
    assert.deepEqual(await readdir(outside), ['victim']);
    assert.equal((await lstat(path.join(outside, 'victim'))).nlink, 1);
    assert.deepEqual(await leftovers(scratch), []);
    await assert.rejects(lstat(path.join(scratch, 'escape')), { code: 'ENOENT' });
    await assert.rejects(lstat(targetPath), { code: 'ENOENT' });
  });

  it('makes commit idempotent, and abort after commit keeps the restored tree', async () => {
    const targetPath = fresh('target');
    const session = await beginAt(targetPath);
    await session.write(header('data/a', 'file', { size: 2 }), Readable.from([Buffer.from('hi')]));
    const first = await session.commit();
    assert.deepEqual(await session.commit(), first);
    await session.abort();
    assert.equal(await readFile(path.join(targetPath, 'a'), 'utf8'), 'hi');
    assert.deepEqual(first.bytes, 2);
  });

  it('streams a big file as exactly its listed size: growth is cut off and named as changed, shrinking fails naming the file', async () => {
    const root = fresh();
    const content = Buffer.alloc(64 * 1024, 1);
    await makeTree(root, { grows: content, rewritten: content, shrinks: content, steady: content });
    const source = createDirSourceFactory({ smallFileBytes: 1024 })([dirUri(root)], {}, context);
    const notices: EntryNotice[] = [];
    const entries: SourceEntry[] = [];
    for await (const entry of source.entries({ signal: new AbortController().signal, progress: nullProgress, notices: { add: (n) => notices.push(n) } })) entries.push(entry);
    await appendFile(path.join(root, 'grows'), 'more');
    const rewritten = await open(path.join(root, 'rewritten'), 'r+');
    await rewritten.write(Buffer.alloc(10, 2), 0, 10, 0);
    await rewritten.utimes(new Date(), new Date(Date.now() + 5000));
    await rewritten.close();
    await truncate(path.join(root, 'shrinks'), 100);
    const readAll = async (name: string) => Buffer.concat(await (await entries.find((e) => e.path === `data/${name}`)!.open!()).toArray());
    assert.deepEqual(await readAll('grows'), content);
    assert.equal((await readAll('rewritten')).length, content.length);
    assert.deepEqual(await readAll('steady'), content);
    assert.deepEqual(notices, [
      { kind: 'changed', path: 'data/grows', reason: `changed while read: size ${content.length} → ${content.length + 4} bytes` },
      { kind: 'changed', path: 'data/rewritten', reason: 'changed while read: modified' },
    ]);
    const shrunk = entries.find((e) => e.path === 'data/shrinks')!;
    await assert.rejects((await shrunk.open!()).toArray(), new RegExp(`${path.join(root, 'shrinks')}.*shrank`));
  });

  it('reads a small file as its listed size and tells whether it grew, with either kind of IO', async () => {
    const root = fresh();
    await makeTree(root, { small: 'hello world' });
    for (const io of [syncTreeIo, asyncTreeIo]) {
      assert.deepEqual(await io.readFile(path.join(root, 'small'), 11), { bytes: Buffer.from('hello world'), grew: false });
      assert.deepEqual(await io.readFile(path.join(root, 'small'), 5), { bytes: Buffer.from('hello'), grew: true });
      await assert.rejects(io.readFile(path.join(root, 'small'), 20), /shrank while being read \(listed with 20 bytes, only 11 there\)/);
    }
  });

  it('round-trips a sparse file over 1 GiB, compared by hash', async () => {
    const root = fresh();
    await mkdir(root);
    const big = path.join(root, 'disk.img');
    const size = 1024 ** 3 + 5 * 1024 * 1024 + 123;
    const handle = await open(big, 'w');
    try {
      await handle.truncate(size);
      for (const offset of [0, 300 * 1024 * 1024 + 7, size - 4096]) await handle.write(Buffer.alloc(4096, 0xab), 0, 4096, offset);
    } finally {
      await handle.close();
    }
    const restored = fresh('restored');
    await restore(sourceOf(root), restored);
    assert.equal((await stat(path.join(restored, 'disk.img'))).size, size);
    // Compares both files by SHA-256 (streamed), besides mode and mtime.
    await assertTreesEqual(root, restored);
    await rm(restored, { recursive: true });
    await rm(root, { recursive: true });
  });
});
