import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { RetentionPolicy, StorageType, jetstreamManager } from '@nats-io/jetstream';
import type { Job } from 'bullmq';
import { sh, useTestWorker, type TestEnvironment } from './helpers/worker-fixture.js';
import { startNatsServer } from './helpers/nats-server.js';
import type { SnapshotRecord } from '../shared/catalog/snapshot-record.js';
import { Repository } from '../shared/catalog/repository.js';
import { FsDriver } from '../shared/storage/fs/fs-driver.js';

const NATS_URL = 'nats://127.0.0.1:4222';

async function failedReason(environment: TestEnvironment, job: Job): Promise<string> {
  await job.waitUntilFinished(environment.events, 120_000).then(
    () => assert.fail(`job ${job.id} should have failed`),
    () => {},
  );
  return (await environment.queue.getJob(job.id!))!.failedReason;
}

function makeDatabase(file: string, rows: number, tag: string): void {
  const db = new Database(file);
  db.pragma('journal_mode = wal');
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, tag TEXT, body BLOB)');
  const insert = db.prepare('INSERT INTO items (tag, body) VALUES (?, randomblob(500))');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run(tag);
  })();
  db.close();
}

describe('SQLite and NATS sources through the queue', () => {
  // Jobs here name private NATS servers on random ports, so the worker allows any server.
  const fixture = useTestWorker({ SNAPWORKER_NATS_ALLOWED_SERVERS: '*' });
  let environment: TestEnvironment;
  let repository: Repository;
  before(() => {
    environment = fixture.environment;
    repository = new Repository('default', new FsDriver({ root: environment.repoDir }));
  });

  it('keeps a lineage of SQLite snapshots, records checked facts in the manifest, and restores latest by source name', async () => {
    const db = path.join(environment.root, 'orders.db');
    makeDatabase(db, 1000, 'first');
    const first = (await (await environment.queue.add('snapshot', { v: 1, source: `sqlite://${db}` })).waitUntilFinished(environment.events, 60_000)) as SnapshotRecord;
    const live = new Database(db);
    live.prepare("INSERT INTO items (tag, body) VALUES ('second', randomblob(10))").run();
    live.close();
    const second = (await (await environment.queue.add('snapshot', { v: 1, source: `sqlite://${db}` })).waitUntilFinished(environment.events, 60_000)) as SnapshotRecord;

    assert.deepEqual((await repository.list({ source: 'orders' })).map((r) => r.id), [first.id, second.id], 'the lineage in time order');
    const extracted = path.join(environment.root, 'orders-extracted');
    const manifest = await sh(`mkdir -p '${extracted}' && cd '${extracted}' && zstd -dc < '${path.join(environment.repoDir, second.archive!.key)}' | tar -xf - && cat manifest.json`);
    assert.equal(manifest.code, 0, manifest.output);
    const [details] = JSON.parse(manifest.output).source.details.databases;
    assert.equal(details.integrity, 'ok');
    assert.ok(details.pageCount > 0 && details.pageSize > 0 && details.sizeBytes > 0);
    assert.equal(details.journalMode, 'wal');

    const restored = path.join(environment.root, 'orders-restored.db');
    const result = (await (await environment.queue.add('restore', { v: 1, snapshot: 'latest', source: 'orders', target: `sqlite://${restored}` }, { priority: 1 })).waitUntilFinished(environment.events, 60_000)) as { snapshotId: string };
    assert.equal(result.snapshotId, second.id);
    assert.equal(execFileSync('sqlite3', [restored, 'PRAGMA integrity_check'], { encoding: 'utf8' }).trim(), 'ok');
    assert.equal(execFileSync('sqlite3', [restored, "SELECT count(*) FROM items WHERE tag = 'second'"], { encoding: 'utf8' }).trim(), '1');
  });

  it('fails a snapshot of a file that is not SQLite with a clear error and lists nothing', async () => {
    const bogus = path.join(environment.root, 'not-a-db.sqlite');
    execFileSync('bash', ['-c', `head -c 100000 /dev/urandom > '${bogus}'`]);
    const reason = await failedReason(environment, await environment.queue.add('snapshot', { v: 1, source: `sqlite://${bogus}` }, { attempts: 3 }));
    assert.match(reason, /not-a-db\.sqlite/);
    assert.deepEqual(await repository.list({ source: 'not-a-db' }), []);
  });

  describe('NATS JetStream', () => {
    let nc: NatsConnection;
    before(async () => {
      nc = await connect({ servers: NATS_URL });
    });
    after(async () => {
      await nc?.close();
    });

    it('snapshots a stream, and restores it after it was deleted, through the queue', async () => {
      const stream = `QUEUE_${randomBytes(4).toString('hex').toUpperCase()}`;
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: StorageType.File, retention: RetentionPolicy.Limits });
      try {
        for (let i = 0; i < 2000; i++) nc.publish(`${stream}.${i % 3}`, new TextEncoder().encode(`message ${i}`));
        await nc.flush();
        while ((await jsm.streams.info(stream)).state.messages < 2000) await new Promise((r) => setTimeout(r, 20));
        const before = (await jsm.streams.info(stream)).state;

        const record = (await (await environment.queue.add('snapshot', { v: 1, source: `${NATS_URL}/${stream}` })).waitUntilFinished(environment.events, 60_000)) as SnapshotRecord;
        assert.equal(record.source.kind, 'nats');
        assert.equal(record.source.name, stream);
        const refused = await failedReason(environment, await environment.queue.add('restore', { v: 1, snapshot: record.id, target: `${NATS_URL}/${stream}` }));
        assert.match(refused, /exists/);

        await jsm.streams.delete(stream);
        await (await environment.queue.add('restore', { v: 1, snapshot: record.id, target: `${NATS_URL}/${stream}` }, { priority: 1 })).waitUntilFinished(environment.events, 60_000);
        const after = (await jsm.streams.info(stream)).state;
        assert.deepEqual([after.messages, after.bytes, after.first_seq, after.last_seq], [before.messages, before.bytes, before.first_seq, before.last_seq]);

        const renamed = await failedReason(environment, await environment.queue.add('restore', { v: 1, snapshot: record.id, target: `${NATS_URL}/OTHER_${stream}` }));
        assert.match(renamed, /name/i);
      } finally {
        await jsm.streams.delete(stream).catch(() => {});
      }
    });

    it('fails the job with a clear error and writes no record when the server dies mid-snapshot', async () => {
      const server = await startNatsServer();
      const stream = 'DOOMED';
      const client = await connect({ servers: server.url });
      try {
        const jsm = await jetstreamManager(client);
        await jsm.streams.add({ name: stream, subjects: ['doomed.>'], storage: StorageType.File });
        const payload = randomBytes(32 * 1024);
        for (let i = 0; i < 6000; i++) {
          client.publish(`doomed.${i % 4}`, payload);
          if (i % 500 === 499) await client.flush();
        }
        await client.flush();
        await client.close();
        const job = await environment.queue.add('snapshot', { v: 1, source: `${server.url}/${stream}`, name: 'doomed' }, { attempts: 1 });
        // Kill the server as soon as a worker has taken the job.
        for (let i = 0; i < 400 && (await job.getState()) !== 'active'; i++) await new Promise((r) => setTimeout(r, 10));
        await new Promise((r) => setTimeout(r, 100));
        await server.kill();
        const reason = await failedReason(environment, job);
        assert.match(reason, /connection|closed|disconnect|timed out|timeout/i);
        assert.deepEqual(await repository.list({ source: 'doomed' }), []);
        const leftovers = (await readdir(environment.root)).filter((n) => n.startsWith('nats-snapshot-'));
        assert.deepEqual(leftovers, [], 'staging removed');
      } finally {
        await server.stop().catch(() => {});
      }
    });
  });
});
