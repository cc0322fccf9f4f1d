/**
 * A failed snapshot leaves nothing of itself in a file repository: not its archive, not a temp
 * file, not an empty `snapshots/<id>/` folder that nothing would ever list. The full disk is a
 * real one: a 2 MiB tmpfs mounted as the repository (needs root; skipped with a reason otherwise).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { SourceEntry } from '../shared/snapshot/entry.js';
import { isRetryable, NoSpaceError } from '../shared/errors.js';
import { nullNotices } from '../shared/kinds/notices.js';
import { createSqliteSource } from '../shared/kinds/sqlite/sqlite-source.js';
import { createNatsSource } from '../shared/kinds/nats/nats-source.js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { StorageType, jetstreamManager } from '@nats-io/jetstream';
import { Repository } from '../shared/catalog/repository.js';
import { newSnapshotId } from '../shared/ids.js';
import { pruneSnapshots } from '../shared/pipeline/prune-snapshots.js';
import { takeSnapshot } from '../shared/pipeline/take-snapshot.js';
import { nullProgress } from '../shared/progress.js';
import type { Source } from '../shared/kinds/source.js';
import { FsDriver } from '../shared/storage/fs/fs-driver.js';
import type { PutOptions, PutResult } from '../shared/storage/storage-driver.js';
import { createTestEnvironment, startTestWorker, type TestEnvironment } from './helpers/worker-fixture.js';

/** Every file and folder under `dir`, relative, sorted. */
async function everything(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).sort();
}

const CANNOT_MOUNT = process.getuid?.() === 0 ? false : 'needs root to mount a size-limited tmpfs';

describe('a full repository disk', { skip: CANNOT_MOUNT }, () => {
  let environment: TestEnvironment;
  let stop: (() => Promise<void>) | undefined;
  before(async () => {
    environment = await createTestEnvironment();
    await mkdir(environment.repoDir);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', environment.repoDir]);
    assert.equal(mounted.status, 0, mounted.stderr.toString());
    const { worker } = await startTestWorker(environment);
    stop = () => worker.stop();
  });
  after(async () => {
    await stop?.();
    spawnSync('umount', ['-l', environment.repoDir]);
    await environment.cleanup();
  });

  it('fails the snapshot job once with "no space left" naming the repository, and leaves nothing of it', async () => {
    const source = path.join(environment.root, 'big');
    await mkdir(source);
    await writeFile(path.join(source, 'random.bin'), randomBytes(4 * 1024 * 1024));
    const job = await environment.queue.add('snapshot', { v: 1, source: `dir://${source}` }, { attempts: 3, backoff: { type: 'fixed', delay: 100 } });
    await assert.rejects(job.waitUntilFinished(environment.events, 60_000));
    const failed = (await environment.queue.getJob(job.id!))!;
    assert.match(failed.failedReason, /no space left on device in repository file:\/\//);
    assert.ok(failed.failedReason.includes(environment.repoDir), failed.failedReason);
    assert.equal(failed.failedReason.split('\n').length, 1, 'one line');
    assert.equal(failed.attemptsMade, 1, 'a full disk is not retried');
    // config.json and the index marker: the repository itself, created (SNAPWORKER_AUTO_INIT)
    // before the snapshot started.
    assert.deepEqual(await everything(environment.repoDir), ['config.json', 'index', 'index/catalog.json'], 'no archive, temp file or snapshot folder is left');
  });
});

describe('a full staging disk', { skip: CANNOT_MOUNT }, () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-full-staging-'));
    await mkdir(path.join(root, 'staging'));
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', path.join(root, 'staging')]);
    assert.equal(mounted.status, 0, mounted.stderr.toString());
  });
  after(async () => {
    spawnSync('umount', ['-l', path.join(root, 'staging')]);
    await rm(root, { recursive: true, force: true });
  });

  it('fails an SQLite snapshot with "no space left" naming the staging folder, not retryable, and removes its copy', async () => {
    const dbPath = path.join(root, 'big.db');
    const db = new Database(dbPath);
    db.exec('CREATE TABLE t (pad BLOB)');
    const insert = db.prepare('INSERT INTO t VALUES (randomblob(1000))');
    db.transaction(() => {
      for (let i = 0; i < 3000; i++) insert.run();
    })();
    db.close();
    const source = createSqliteSource([new URL(`sqlite://${dbPath}`)], {}, { checkPath: () => {}, stagingDir: path.join(root, 'staging') });
    const signal = new AbortController().signal;
    await assert.rejects(source.prepare!({ signal, progress: nullProgress, notices: nullNotices }), (err: Error) => {
      assert.ok(err instanceof NoSpaceError, String(err));
      assert.match(err.message, /no space left on device writing the copy in .*staging/);
      assert.equal(isRetryable(err), false);
      return true;
    });
    await source.release!();
    assert.deepEqual(await everything(path.join(root, 'staging')), []);
  });
});

describe('a full staging disk for a NATS snapshot', { skip: CANNOT_MOUNT }, () => {
  let root: string;
  let nc: NatsConnection;
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-full-nats-staging-'));
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', root]);
    assert.equal(mounted.status, 0, mounted.stderr.toString());
    nc = await connect({ servers: 'nats://127.0.0.1:4222' });
  });
  after(async () => {
    await nc?.close();
    spawnSync('umount', ['-l', root]);
    await rm(root, { recursive: true, force: true });
  });

  it('fails with "no space left" naming the staging folder, not retryable, and removes what it staged', async () => {
    const stream = `FULL_${randomBytes(4).toString('hex').toUpperCase()}`;
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: StorageType.File });
    try {
      for (let i = 0; i < 100; i++) nc.publish(`${stream}.x`, randomBytes(32 * 1024));
      await nc.flush();
      while ((await jsm.streams.info(stream)).state.messages < 100) await new Promise((r) => setTimeout(r, 20));
      const source = createNatsSource([new URL(`nats://127.0.0.1:4222/${stream}`)], {}, { checkPath: () => {}, stagingDir: root });
      const signal = new AbortController().signal;
      await assert.rejects(source.prepare!({ signal, progress: nullProgress, notices: nullNotices }), (err: Error) => {
        assert.ok(err instanceof NoSpaceError, String(err));
        assert.match(err.message, new RegExp(`nats: nats://127.0.0.1:4222/${stream}: staging the snapshot: no space left on device in ${root}/nats-snapshot-`));
        assert.equal(isRetryable(err), false);
        return true;
      });
      await source.release!();
      assert.deepEqual(await everything(root), []);
    } finally {
      await jsm.streams.delete(stream).catch(() => {});
    }
  });
});

describe('failed snapshots leave no folder behind', () => {
  let root: string;
  let repository: Repository;
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-leftovers-'));
    repository = new Repository('test', new FsDriver({ root }));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** A source whose second entry fails while the first is already on its way into the repository. */
  function failingSource(fail: () => void): Source {
    return {
      descriptor: { kind: 'test', uri: 'test:', name: 'failing' },
      async *entries(): AsyncGenerator<SourceEntry> {
        const bytes = randomBytes(3 * 1024 * 1024);
        yield { path: 'data/first.bin', type: 'file', mode: 0o644, mtime: new Date(), size: bytes.length, open: () => Readable.from([bytes]) };
        fail();
        yield { path: 'data/second.bin', type: 'file', mode: 0o644, mtime: new Date(), size: 1, open: () => Readable.from([Buffer.from('x')]) };
      },
    };
  }

  it('when the source throws mid-upload', async () => {
    const snapshot = takeSnapshot({
      id: newSnapshotId(),
      source: failingSource(() => {
        throw new Error('source went away');
      }),
      repository,
      labels: {},
      compression: 'none',
      signal: new AbortController().signal,
      progress: nullProgress,
    });
    await assert.rejects(snapshot, /source went away/);
    assert.deepEqual(await everything(root), []);
  });

  it('when the job is aborted mid-upload', async () => {
    const controller = new AbortController();
    const snapshot = takeSnapshot({
      id: newSnapshotId(),
      source: failingSource(() => controller.abort(new Error('job cancelled'))),
      repository,
      labels: {},
      compression: 'none',
      signal: controller.signal,
      progress: nullProgress,
    });
    await assert.rejects(snapshot);
    assert.deepEqual(await everything(root), []);
  });

  it('when the record cannot be written after the archive was stored', async () => {
    // The fault injected: the record's put fails (a full disk would, with the archive just fitting).
    class RecordRefusingDriver extends FsDriver {
      override put(key: string, body: Readable, options?: PutOptions): Promise<PutResult> {
        if (key.endsWith('/snapshot.json')) return Promise.reject(new NoSpaceError(`fs: put ${key}: no space left on device`));
        return super.put(key, body, options);
      }
    }
    const snapshot = takeSnapshot({
      id: newSnapshotId(),
      source: { descriptor: { kind: 'test', uri: 'test:', name: 'record' }, async *entries() {} },
      repository: new Repository('test', new RecordRefusingDriver({ root })),
      labels: {},
      compression: 'none',
      signal: new AbortController().signal,
      progress: nullProgress,
    });
    await assert.rejects(snapshot, NoSpaceError);
    assert.deepEqual(await everything(root), [], 'the stored archive is removed with its folder');
  });

  it('prune removes empty snapshot folders and dead temp files older than its grace, and keeps young ones', async () => {
    const old = new Date(Date.now() - 2 * 3600_000);
    const emptyId = newSnapshotId();
    const staleId = newSnapshotId();
    const youngId = newSnapshotId();
    for (const id of [emptyId, staleId, youngId]) await mkdir(path.join(root, 'snapshots', id), { recursive: true });
    const staleTemp = path.join(root, 'snapshots', staleId, '.tmp-0123456789abcdef');
    await writeFile(staleTemp, 'half an archive');
    await utimes(staleTemp, old, old);
    for (const id of [emptyId, staleId]) await utimes(path.join(root, 'snapshots', id), old, old);

    const result = await pruneSnapshots({ repository, policy: {}, filter: {}, dryRun: false, signal: new AbortController().signal });
    assert.deepEqual(result.removedIncomplete.sort(), [emptyId, staleId].sort());
    assert.deepEqual(await everything(root), ['snapshots', `snapshots/${youngId}`], 'a folder younger than the grace may be a put in flight');
  });

  it('a retried attempt removes the temp files its crashed attempt left in the snapshot folder, and nothing else', async () => {
    const id = newSnapshotId();
    const other = newSnapshotId();
    for (const folder of [id, other]) {
      await mkdir(path.join(root, 'snapshots', folder), { recursive: true });
      await writeFile(path.join(root, 'snapshots', folder, '.tmp-0123456789abcdef'), 'half an archive');
    }
    await writeFile(path.join(root, 'snapshots', id, 'archive.tar'), 'a whole archive of the crashed attempt');
    await repository.discardSnapshotLeftovers(id);
    assert.deepEqual(await everything(path.join(root, 'snapshots', id)), ['archive.tar'], 'the attempt replaces its objects itself');
    assert.deepEqual(await everything(path.join(root, 'snapshots', other)), ['.tmp-0123456789abcdef'], "another snapshot's temp file may be a live put");
    for (const folder of [id, other]) await rm(path.join(root, 'snapshots', folder), { recursive: true });
  });
});
