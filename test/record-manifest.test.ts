import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { StorageType, jetstreamManager } from '@nats-io/jetstream';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { sh, useTestWorker, type TestEnvironment } from './helpers/worker-fixture.js';

const NATS_URL = 'nats://127.0.0.1:4222';

/** Snapshots `source` through the queue and returns the job's record, the stored record and the archive's manifest. */
async function snapshotThroughQueue(environment: TestEnvironment, source: string): Promise<{ result: SnapshotRecord; stored: SnapshotRecord; manifest: { source: unknown } }> {
  const job = await environment.queue.add('snapshot', { v: 1, source });
  const result = (await job.waitUntilFinished(environment.events, 60_000)) as SnapshotRecord;
  const stored = JSON.parse(await readFile(path.join(environment.repoDir, 'snapshots', result.id, 'snapshot.json'), 'utf8')) as SnapshotRecord;
  const extracted = await sh(`zstd -dc < '${path.join(environment.repoDir, result.archive!.key)}' | tar -xOf - manifest.json`);
  assert.equal(extracted.code, 0, extracted.output);
  return { result, stored, manifest: JSON.parse(extracted.output) as { source: unknown } };
}

function assertSameDescriptor(snapshot: { result: SnapshotRecord; stored: SnapshotRecord; manifest: { source: unknown } }): void {
  assert.deepEqual(snapshot.stored.source, snapshot.manifest.source, 'the stored record describes the source as the manifest does');
  assert.deepEqual(snapshot.result.source, snapshot.manifest.source, 'the job result describes the source as the manifest does');
}

describe('the record describes the source exactly as the archive manifest does, for every kind', () => {
  const fixture = useTestWorker();
  let nc: NatsConnection;
  before(async () => {
    nc = await connect({ servers: NATS_URL });
  });
  after(async () => {
    await nc?.close();
  });

  it('a directory snapshot', async () => {
    const environment = fixture.environment;
    const dir = path.join(environment.root, 'tree');
    await mkdir(path.join(dir, 'sub'), { recursive: true });
    await writeFile(path.join(dir, 'sub', 'a.txt'), 'hello');
    const snapshot = await snapshotThroughQueue(environment, `dir://${dir}`);
    assert.equal(snapshot.result.source.kind, 'dir');
    assertSameDescriptor(snapshot);
  });

  it('an SQLite snapshot, whose checked facts are in both', async () => {
    const environment = fixture.environment;
    const file = path.join(environment.root, 'facts.db');
    const db = new Database(file);
    db.pragma('journal_mode = wal');
    db.exec("CREATE TABLE t (x); INSERT INTO t VALUES ('a'), ('b')");
    db.close();
    const snapshot = await snapshotThroughQueue(environment, `sqlite://${file}`);
    assertSameDescriptor(snapshot);
    const [facts] = (snapshot.stored.source.details as { databases: Array<Record<string, unknown>> }).databases;
    assert.equal(facts!.integrity, 'ok');
    assert.ok((facts!.pageCount as number) > 0);
  });

  it('a NATS snapshot, whose snapshot size and stream state are in both', async () => {
    const environment = fixture.environment;
    const stream = `FIXED_${randomBytes(4).toString('hex').toUpperCase()}`;
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: StorageType.File });
    try {
      for (let i = 0; i < 50; i++) nc.publish(`${stream}.x`, new TextEncoder().encode(`message ${i}`));
      await nc.flush();
      while ((await jsm.streams.info(stream)).state.messages < 50) await new Promise((r) => setTimeout(r, 20));
      const snapshot = await snapshotThroughQueue(environment, `${NATS_URL}/${stream}`);
      assertSameDescriptor(snapshot);
      const details = snapshot.stored.source.details as Record<string, unknown>;
      assert.equal(details.messages, 50);
      assert.ok((details.snapshotBytes as number) > 0, 'the snapshot size is recorded');
      assert.ok((details.snapshotChunks as number) > 0);
    } finally {
      await jsm.streams.delete(stream).catch(() => {});
    }
  });
});
