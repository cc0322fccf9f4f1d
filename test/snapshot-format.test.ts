/**
 * The snapshot-format seam: records name their format (old ones without the field are archives),
 * an unknown format is refused in one line, and restore pulls entries from the format's reader,
 * so a target that fails mid-way stops the reader: the download, the tar parser and the zstd
 * thread end, and the target stays as it was.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Repository } from '../shared/catalog/repository.js';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { IntegrityError } from '../shared/errors.js';
import { newSnapshotId } from '../shared/ids.js';
import { createDirSource } from '../shared/kinds/dir/dir-source.js';
import { createDirTarget } from '../shared/kinds/dir/dir-target.js';
import type { EndpointContext } from '../shared/kinds/source.js';
import type { RestoreTarget } from '../shared/kinds/restore-target.js';
import { restoreSnapshot, verifySnapshot } from '../shared/pipeline/restore-snapshot.js';
import { takeSnapshot } from '../shared/pipeline/take-snapshot.js';
import { nullProgress } from '../shared/progress.js';
import { FsDriver } from '../shared/storage/fs/fs-driver.js';
import type { GetOptions } from '../shared/storage/storage-driver.js';

/** Threads of this process (Linux): a zstd decompression thread shows up here while it lives. */
function threadCount(): number {
  return readdirSync('/proc/self/task').length;
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A repository that remembers every stream it handed out, to see that a reader stopped them. */
class WatchedRepository extends Repository {
  readonly downloads: Readable[] = [];
  override async getObject(key: string, options?: GetOptions): Promise<Readable> {
    const stream = await super.getObject(key, options);
    this.downloads.push(stream);
    return stream;
  }
}

describe('snapshot formats', () => {
  let root: string;
  let repository: WatchedRepository;
  let record: SnapshotRecord;
  const signal = new AbortController().signal;
  const context: EndpointContext = { checkPath: () => {}, stagingDir: '' };

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-formats-'));
    context.stagingDir = root;
    repository = new WatchedRepository('formats', new FsDriver({ root: path.join(root, 'repo') }));
    await repository.init();
    const site = path.join(root, 'site');
    await mkdir(site);
    // Enough incompressible files that the reader is far from the end when the target fails.
    for (let i = 0; i < 64; i += 1) await writeFile(path.join(site, `file-${String(i).padStart(2, '0')}.bin`), randomBytes(256 * 1024));
    const source = createDirSource([new URL(`dir://${site}`)], { name: 'site' }, context);
    record = await takeSnapshot({ id: newSnapshotId(), source, repository, labels: {}, compression: 'zstd', signal, progress: nullProgress });
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('names the format in new records', () => {
    assert.equal(record.format, 'archive');
  });

  it('restores a snapshot whose record has no format field (written before formats had names)', async () => {
    const { format: _dropped, ...old } = record;
    await repository.putRecord(old as SnapshotRecord);
    const stored = await repository.getRecord(record.id);
    assert.equal(stored.format, undefined, 'the record reads back without a format');
    const target = path.join(root, 'restored-old');
    const result = await restoreSnapshot({ repository, record: stored, target: createDirTarget([new URL(`dir://${target}`)], {}, context), replace: false, signal, progress: nullProgress });
    assert.equal(result.entries, 64);
    assert.deepEqual(await readFile(path.join(target, 'file-07.bin')), await readFile(path.join(root, 'site', 'file-07.bin')));
    await repository.putRecord(record);
  });

  it('refuses a record in a format this version does not know with one line naming it, for restore and verify', async () => {
    const future = { ...record, format: 'chunked-v9' };
    const target = path.join(root, 'restored-future');
    const expected = (err: unknown) => {
      assert.ok(err instanceof IntegrityError, String(err));
      assert.equal(err.message, `snapshot ${record.id}: stored in format "chunked-v9", which this version cannot read (known: archive, chunked)`);
      assert.ok(!err.message.includes('\n'));
      return true;
    };
    await assert.rejects(restoreSnapshot({ repository, record: future, target: createDirTarget([new URL(`dir://${target}`)], {}, context), replace: false, signal, progress: nullProgress }), expected);
    await assert.rejects(verifySnapshot({ repository, record: future, signal, progress: nullProgress }), expected);
    await assert.rejects(readdir(target), { code: 'ENOENT' });
  });

  it('stops the reader when the target fails mid-restore: download and zstd thread end, target untouched', async () => {
    const baseline = threadCount();
    const targetPath = path.join(root, 'restored-failing');
    const real = createDirTarget([new URL(`dir://${targetPath}`)], {}, context);
    let writes = 0;
    let threadsWhileReading = 0;
    const failing: RestoreTarget = {
      uri: real.uri,
      accepts: real.accepts,
      async begin(manifest, options) {
        const session = await real.begin(manifest, options);
        return {
          async write(header, body) {
            writes += 1;
            threadsWhileReading = Math.max(threadsWhileReading, threadCount());
            if (writes === 6) throw new Error('target disk went away');
            await session.write(header, body);
          },
          commit: () => session.commit(),
          abort: () => session.abort(),
        };
      },
    };
    const downloadsBefore = repository.downloads.length;
    await assert.rejects(restoreSnapshot({ repository, record, target: failing, replace: false, signal, progress: nullProgress }), /target disk went away/);
    assert.equal(writes, 6, 'no entry was written after the failure');
    const download = repository.downloads[downloadsBefore];
    assert.ok(download, 'the restore downloaded the archive');
    assert.ok(download.destroyed, 'the download was stopped, not left to run to its end');
    assert.ok(threadsWhileReading > baseline, 'a zstd thread ran while reading');
    await waitFor(() => threadCount() <= baseline, `the zstd thread to end (threads ${threadCount()}, before ${baseline})`);
    await assert.rejects(readdir(targetPath), { code: 'ENOENT' }, 'the target was never created');
    assert.deepEqual((await readdir(root)).sort(), ['repo', 'restored-old', 'site'], 'no staging directory left');
  });

  it('verifies through the same reader, draining bodies nobody reads', async () => {
    const summary = await verifySnapshot({ repository, record, signal, progress: nullProgress });
    assert.deepEqual(summary, { entries: 64, files: 64, rawBytes: 64 * 256 * 1024, sealed: false });
  });

  it('writes new snapshots in the format config.json names, and refuses one it does not know', async () => {
    const other = new Repository('formats-other', new FsDriver({ root: path.join(root, 'repo-other') }));
    await other.init({ snapshotFormat: 'chunked-v9' });
    const source = createDirSource([new URL(`dir://${path.join(root, 'site')}`)], { name: 'site' }, context);
    await assert.rejects(
      takeSnapshot({ id: newSnapshotId(), source, repository: other, labels: {}, compression: 'zstd', signal, progress: nullProgress }),
      /snapshot format "chunked-v9" is not known to this version \(known: archive, chunked\)/,
    );
    // init writes the repository's marker and the catalog index's; no snapshot.
    assert.deepEqual(await readdir(path.join(root, 'repo-other')), ['config.json', 'index'], 'nothing stored');
    assert.deepEqual(await readdir(path.join(root, 'repo-other', 'index')), ['catalog.json']);
    await rm(path.join(root, 'repo-other'), { recursive: true });
  });
});
