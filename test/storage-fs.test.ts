import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';

import { InvalidInputError } from '../shared/errors.js';
import { FsDriver } from '../shared/storage/fs/fs-driver.js';
import { openDriver } from '../shared/storage/open-driver.js';
import { chunkedBody, readAll, runStorageDriverSuite } from './helpers/storage-suite.js';

async function everyFile(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => relative(root, join(entry.parentPath ?? entry.path, entry.name)));
}

runStorageDriverSuite('fs', async () => {
  const root = await mkdtemp(join(tmpdir(), 'snapworker-fs-driver-'));
  return {
    driver: new FsDriver({ root }),
    cleanup: () => rm(root, { recursive: true, force: true }),
    // Folders too: a failed put must not leave the empty folder it made for its key.
    leftovers: async () => (await readdir(root, { recursive: true })).sort(),
  };
});

test('fs driver writes keys as files under its root and prunes empty directories on delete', async () => {
  const root = await mkdtemp(join(tmpdir(), 'snapworker-fs-driver-'));
  try {
    const driver = new FsDriver({ root });
    await driver.put('snapshots/01/archive.tar', chunkedBody(Buffer.from('hello')));
    assert.deepEqual(await everyFile(root), ['snapshots/01/archive.tar']);
    await driver.delete('snapshots/01/archive.tar');
    assert.deepEqual(await readdir(root), []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('fs driver refuses keys that use its temp-file prefix', async () => {
  const root = await mkdtemp(join(tmpdir(), 'snapworker-fs-driver-'));
  try {
    const driver = new FsDriver({ root });
    await assert.rejects(driver.put('a/.tmp-x', chunkedBody(Buffer.from('x'))), InvalidInputError);
    assert.throws(() => new FsDriver({ root: 'relative/dir' }), InvalidInputError);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('openDriver opens a file:// repository as an FsDriver rooted at the path', async () => {
  const root = await mkdtemp(join(tmpdir(), 'snapworker-fs-driver-'));
  try {
    const driver = openDriver(`file://${root}`);
    assert.equal(driver.kind, 'fs');
    const bytes = randomBytes(1000);
    await driver.put('x/y.bin', chunkedBody(bytes));
    assert.ok((await readAll(await new FsDriver({ root }).get('x/y.bin'))).equals(bytes));
    assert.throws(() => openDriver('file://relative'), InvalidInputError);
    assert.throws(() => openDriver('file://host/abs'), /host/);
    assert.throws(() => openDriver('ftp://x/y'), /scheme/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a put aborted while its body fails too leaves no unhandled rejection behind', async () => {
  const root = await mkdtemp(join(tmpdir(), 'snapworker-fs-abort-'));
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const driver = new FsDriver({ root });
    const controller = new AbortController();
    const { PassThrough } = await import('node:stream');
    const body = new PassThrough();
    body.on('error', () => {}); // its owner listens, as the archive writer does on its output
    const put = driver.put('k', body, { signal: controller.signal });
    body.write(randomBytes(1024));
    await new Promise((r) => setImmediate(r));
    // What a shutdown does to a snapshot: the signal fires and the archive stream dies with it.
    controller.abort('shutting down');
    body.destroy(new Error('archive: writing aborted'));
    await assert.rejects(put);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(unhandled, []);
    assert.deepEqual(await readdir(root), []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await rm(root, { recursive: true, force: true });
  }
});
