import assert from 'node:assert/strict';
import { open, readdir, readFile, writeFile, mkdir, stat, utimes } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import type { Job } from 'bullmq';
import { assertTreesEqual, dir, file, makeTree, symlink } from './helpers/tree.js';
import { eventually, sh, useTestWorker, type TestEnvironment } from './helpers/worker-fixture.js';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';

const OLD = new Date('2020-02-02T02:02:02.500Z');

async function makeSampleTree(root: string): Promise<void> {
  await makeTree(root, {
    'README.md': '# app\n',
    'empty.txt': '',
    'run me.sh': file('#!/bin/sh\necho hi\n', { mode: 0o755, mtime: OLD }),
    'zürich – ünïcode.txt': 'grüezi\n',
    config: dir({ 'app.json': '{"a":1}', secret: file('s3cr3t', { mode: 0o600 }) }, { mode: 0o750, mtime: OLD }),
    nested: dir({ deeper: dir({ deepest: dir({ 'leaf.bin': Buffer.alloc(300_000, 7) }) }), 'empty dir': dir() }, { mtime: OLD }),
    'link-to-file': symlink('config/app.json'),
    'link-to-dir': symlink('nested/deeper'),
  });
}

/** Waits for a job to finish, returning the job as stored (completed or failed). */
async function settled(environment: TestEnvironment, job: Job): Promise<Job> {
  try {
    await job.waitUntilFinished(environment.events, 60_000);
  } catch {
    // failed: read the failure from the stored job below
  }
  return (await environment.queue.getJob(job.id!))!;
}

describe('directories through the queue', () => {
  const fixture = useTestWorker();
  let environment: TestEnvironment;
  before(() => {
    environment = fixture.environment;
  });

  it('snapshots, verifies and restores a tree enqueued with plain BullMQ exactly as the README shows', async () => {
    const source = path.join(environment.root, 'app-data');
    await makeSampleTree(source);
    const { queue, events } = environment;

    const snapshotJob = await queue.add('snapshot', { v: 1, source: `dir://${source}`, labels: { app: 'shop' } }, { priority: 10, attempts: 3 });
    const record = (await snapshotJob.waitUntilFinished(events, 60_000)) as SnapshotRecord;
    assert.equal(record.source.kind, 'dir');
    assert.equal(record.source.name, 'app-data');
    assert.deepEqual(record.labels, { app: 'shop' });
    assert.match(record.archive!.checksum, /^sha-256=/);
    assert.ok(record.stats.entries >= 10);

    const stored = JSON.parse(await readFile(path.join(environment.repoDir, 'snapshots', record.id, 'snapshot.json'), 'utf8'));
    assert.deepEqual(stored, record, 'the record in the repository is the job result');

    const verifyJob = await queue.add('verify', { v: 1, snapshot: record.id }, { priority: 5 });
    const verified = (await verifyJob.waitUntilFinished(events, 60_000)) as { ok: boolean; entries: number };
    assert.equal(verified.ok, true);
    assert.equal(verified.entries, record.stats.entries);

    const target = path.join(environment.root, 'restored');
    const restoreJob = await queue.add('restore', { v: 1, snapshot: 'latest', labels: { app: 'shop' }, target: `dir://${target}` }, { priority: 1 });
    const restored = (await restoreJob.waitUntilFinished(events, 60_000)) as { snapshotId: string };
    assert.equal(restored.snapshotId, record.id);
    await assertTreesEqual(source, target);
  });

  it('round-trips a file over 1 GiB exactly through snapshot and restore', async () => {
    const source = path.join(environment.root, 'huge-src');
    await makeTree(source, { 'small.txt': 'next to a big one' });
    // Sparse apart from a few random blocks: the bytes still all go through hashing, compression
    // and restore, without the test writing a gigabyte to disk first.
    const handle = await open(path.join(source, 'huge.bin'), 'w');
    try {
      await handle.truncate(1024 ** 3 + 5 * 1024 ** 2 + 123);
      for (const at of [0, 300 * 1024 ** 2, 1024 ** 3 + 1024 ** 2]) await handle.write(randomBytes(64 * 1024), 0, 64 * 1024, at);
    } finally {
      await handle.close();
    }
    await utimes(path.join(source, 'huge.bin'), OLD, OLD);
    const snapshot = await environment.queue.add('snapshot', { v: 1, source: `dir://${source}` });
    const record = (await snapshot.waitUntilFinished(environment.events, 300_000)) as SnapshotRecord;
    assert.ok(record.stats.rawBytes > 1024 ** 3);
    const target = path.join(environment.root, 'huge-restored');
    await (await environment.queue.add('restore', { v: 1, snapshot: record.id, target: `dir://${target}` })).waitUntilFinished(environment.events, 300_000);
    await assertTreesEqual(source, target);
  });

  it('writes archives that stock zstd, tar and sha256sum check and extract', async () => {
    const source = path.join(environment.root, 'stock-tools-src');
    await makeSampleTree(source);
    const job = await environment.queue.add('snapshot', { v: 1, source: `dir://${source}` });
    const record = (await job.waitUntilFinished(environment.events, 60_000)) as SnapshotRecord;
    const archive = path.join(environment.repoDir, record.archive!.key);
    const out = path.join(environment.root, 'stock-tools-out');
    await mkdir(out);
    const result = await sh(`zstd -dc < '${archive}' | tar -xf - && sha256sum -c --quiet SHA256SUMS && echo sums-ok`, out);
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /sums-ok/);
    assert.equal(await readFile(path.join(out, 'data', 'config', 'app.json'), 'utf8'), '{"a":1}');
    assert.equal(JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')).snapshotId, record.id);
    const digest = await sh(`sha256sum '${archive}'`);
    assert.equal(digest.output.split(' ')[0], record.archive!.sha256);
  });

  it('fails verify and restore of a corrupted archive naming the entry, and leaves an existing target untouched', async () => {
    const source = path.join(environment.root, 'corrupt-src');
    await makeTree(source, { 'a.txt': 'a'.repeat(10_000), 'b.txt': 'b'.repeat(10_000) });
    const job = await environment.queue.add('snapshot', { v: 1, source: `dir://${source}`, compression: 'none' });
    const record = (await job.waitUntilFinished(environment.events, 60_000)) as SnapshotRecord;

    const archivePath = path.join(environment.repoDir, record.archive!.key);
    const bytes = await readFile(archivePath);
    const at = bytes.indexOf(Buffer.from('b'.repeat(100)));
    bytes[at + 50] = 'X'.charCodeAt(0);
    await writeFile(archivePath, bytes);

    const verify = await settled(environment, await environment.queue.add('verify', { v: 1, snapshot: record.id }, { attempts: 3 }));
    assert.equal(verify.finishedOn !== undefined && verify.failedReason !== undefined, true, 'verify failed');
    assert.match(verify.failedReason, /data\/b\.txt/);
    assert.equal(verify.attemptsMade, 1, 'integrity failures are not retried');

    const target = path.join(environment.root, 'precious');
    await makeTree(target, { 'keep.txt': 'do not lose me' });
    const before = await readdir(environment.root);
    const restore = await settled(
      environment,
      await environment.queue.add('restore', { v: 1, snapshot: record.id, target: `dir://${target}`, replace: true }),
    );
    assert.match(restore.failedReason, /data\/b\.txt/);
    assert.equal(await readFile(path.join(target, 'keep.txt'), 'utf8'), 'do not lose me');
    assert.deepEqual(await readdir(target), ['keep.txt']);
    assert.deepEqual(await readdir(environment.root), before, 'no staging directory left behind');
  });

  it('fails invalid job data at once, without retries, naming the field', async () => {
    const job = await environment.queue.add('snapshot', { v: 1, sorce: 'dir:///x' }, { attempts: 5 });
    const failed = await settled(environment, job);
    assert.equal(failed.attemptsMade, 1);
    assert.match(failed.failedReason, /invalid snapshot job/);
    assert.match(failed.failedReason, /sorce|source/);

    const outside = await settled(environment, await environment.queue.add('snapshot', { v: 1, source: 'dir:///etc' }, { attempts: 5 }));
    assert.equal(outside.attemptsMade, 1);
    assert.match(outside.failedReason, /outside the allowed paths/);

    const credentials = await settled(
      environment,
      await environment.queue.add('snapshot', { v: 1, source: 'nats://user:pw@127.0.0.1:4222/S' }, { attempts: 5 }),
    );
    assert.match(credentials.failedReason, /credentials are not allowed/);
  });

  it('adds a job once when producers give the same job id twice', async () => {
    const source = path.join(environment.root, 'idempotent-src');
    await makeTree(source, { 'x.txt': 'x' });
    const first = await environment.queue.add('snapshot', { v: 1, source: `dir://${source}` }, { jobId: 'nightly-2026-11-22' });
    const second = await environment.queue.add('snapshot', { v: 1, source: `dir://${source}` }, { jobId: 'nightly-2026-11-22' });
    assert.equal(first.id, second.id);
    await first.waitUntilFinished(environment.events, 60_000);
    const records = (await readdir(path.join(environment.repoDir, 'snapshots'))).length;
    const again = await environment.queue.add('snapshot', { v: 1, source: `dir://${source}` }, { jobId: 'nightly-2026-11-22' });
    assert.equal(again.id, first.id);
    assert.equal((await readdir(path.join(environment.repoDir, 'snapshots'))).length, records);
  });

  it('reports progress on the job with bytes, entries, rate and total', async () => {
    const source = path.join(environment.root, 'progress-src');
    await makeTree(source, { 'big.bin': Buffer.alloc(8 * 1024 * 1024, 1), 'small.txt': 'x' });
    const reports: Array<Record<string, unknown>> = [];
    const onProgress = ({ data }: { jobId: string; data: unknown }) => reports.push(data as Record<string, unknown>);
    environment.events.on('progress', onProgress);
    try {
      const job = await environment.queue.add('snapshot', { v: 1, source: `dir://${source}` });
      await job.waitUntilFinished(environment.events, 60_000);
      await eventually('a progress report', () => reports.length > 0, 5000);
    } finally {
      environment.events.off('progress', onProgress);
    }
    const last = reports.at(-1)!;
    assert.equal(typeof last.phase, 'string');
    assert.ok((last.bytesDone as number) >= 8 * 1024 * 1024);
    assert.ok((last.entriesDone as number) >= 2);
    assert.equal(typeof last.bytesPerSecond, 'number');
    assert.equal(last.bytesTotal, 8 * 1024 * 1024 + 1);
  });

  it('removes nothing complete and everything incomplete on prune, keeping the newest per source', async () => {
    const source = path.join(environment.root, 'prune-src');
    await makeTree(source, { 'x.txt': 'x' });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const job = await environment.queue.add('snapshot', { v: 1, source: `dir://${source}`, name: 'prune-me' });
      ids.push(((await job.waitUntilFinished(environment.events, 60_000)) as SnapshotRecord).id);
    }
    const incomplete = path.join(environment.repoDir, 'snapshots', '20200101T000000000Z-deadbeef');
    await mkdir(incomplete, { recursive: true });
    await writeFile(path.join(incomplete, 'archive.tar.zst'), 'partial');
    await utimes(path.join(incomplete, 'archive.tar.zst'), OLD, OLD);

    const job = await environment.queue.add('prune', { v: 1, source: 'prune-me', keepLast: 1, incompleteGrace: '1s' });
    const result = (await job.waitUntilFinished(environment.events, 60_000)) as { kept: string[]; removed: string[]; removedIncomplete: string[] };
    assert.deepEqual(result.kept, [ids[2]]);
    assert.deepEqual(result.removed, ids.slice(0, 2));
    assert.deepEqual(result.removedIncomplete, ['20200101T000000000Z-deadbeef']);
    await assert.rejects(stat(incomplete));
    await assert.rejects(stat(path.join(environment.repoDir, 'snapshots', ids[0]!)));
  });
});
