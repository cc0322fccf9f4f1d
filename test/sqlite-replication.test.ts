import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { IntegrityError, InvalidInputError, NotFoundError } from '../shared/errors.js';
import { FsDriver } from '../shared/storage/fs/fs-driver.js';
import { ReplicaStore } from '../shared/kinds/sqlite/replication/replica-store.js';
import { SqliteReplicator, type ReplicationEvent } from '../shared/kinds/sqlite/replication/replicator.js';
import { restoreReplica } from '../shared/kinds/sqlite/replication/restore-replica.js';
import { applyReplicaRetention } from '../shared/kinds/sqlite/replication/replica-retention.js';
import { listGenerations } from '../shared/kinds/sqlite/replication/list-generations.js';
import { useTestWorker } from './helpers/worker-fixture.js';
import { assertPrefix, wholeTransactions } from './helpers/sqlite-transactions.js';

const WRITER_SCRIPT = fileURLToPath(new URL('./helpers/sqlite-writer.ts', import.meta.url));
const REPLICATOR_SCRIPT = fileURLToPath(new URL('./helpers/sqlite-replicator.ts', import.meta.url));

let root: string;
let stagingDir: string;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-replication-'));
  stagingDir = path.join(root, 'staging');
  await mkdir(stagingDir);
});

/** Every child process a case starts: a case that fails midway must not leave them writing. */
const children: ChildProcess[] = [];

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await rm(root, { recursive: true, force: true });
});

let counter = 0;
async function freshCase(): Promise<{ dir: string; dbPath: string; store: ReplicaStore }> {
  const dir = path.join(root, `case-${++counter}`);
  await mkdir(dir);
  const store = new ReplicaStore(new FsDriver({ root: path.join(dir, 'repo') }), 'app');
  return { dir, dbPath: path.join(dir, 'app.db'), store };
}

async function startWriter(dbPath: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER_SCRIPT, dbPath, 'wal', 'timed'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  assert.equal(line.toString().trim(), 'ready');
  return child;
}

async function stopWriter(child: ChildProcess): Promise<number> {
  const chunks: Buffer[] = [];
  child.stdout!.on('data', (chunk: Buffer) => chunks.push(chunk));
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
  return Number(/committed (\d+)/.exec(Buffer.concat(chunks).toString())?.[1]);
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('SQLite replication', () => {
  it('ships a writer’s numbered transactions through checkpoints and WAL restarts; the latest restore holds every one', async () => {
    const { dir, dbPath, store } = await freshCase();
    const writer = await startWriter(dbPath);
    const events: ReplicationEvent[] = [];
    const replicator = new SqliteReplicator(dbPath, store, { stagingDir, intervalMs: 50, checkpointBytes: 64 * 1024, restartBytes: 256 * 1024, onEvent: (e) => events.push(e) });
    const controller = new AbortController();
    const running = replicator.run(controller.signal);
    // Until the WAL has restarted after our checkpoints twice (a loaded machine takes longer).
    const deadline = Date.now() + 30_000;
    while (!events.some((e) => e.type === 'segment' && e.position.index >= 2) && Date.now() < deadline) await pause(100);
    const committed = await stopWriter(writer);
    await pause(300);
    controller.abort();
    await running;

    const generations = events.filter((e) => e.type === 'generation');
    assert.equal(generations.length, 1, `one generation, got: ${JSON.stringify(generations)}`);
    const indexes = new Set(events.flatMap((e) => (e.type === 'segment' ? [e.position.index] : [])));
    assert.ok(indexes.size >= 3, `the WAL restarted after our checkpoints (indexes ${[...indexes]}; ${JSON.stringify(events.filter((e) => e.type !== "segment"))})`);

    const target = path.join(dir, 'restored.db');
    const result = await restoreReplica(store, {}, target);
    assert.ok(result.segments > 1);
    assertPrefix(wholeTransactions(target).txns, committed);
    const [listed, ...more] = await listGenerations(store);
    assert.equal(more.length, 0);
    assert.equal(listed!.segments, events.filter((e) => e.type === 'segment').length);
    assert.deepEqual(listed!.end, { index: result.index, offset: result.offset });
    assert.equal(listed!.reason, 'start');
  });

  it('restores to several timestamps, each holding the whole transactions committed before that time and none after', async () => {
    const { dir, dbPath, store } = await freshCase();
    const writer = await startWriter(dbPath);
    const replicator = new SqliteReplicator(dbPath, store, { stagingDir, intervalMs: 100, checkpointBytes: 512 * 1024 });
    const controller = new AbortController();
    const running = replicator.run(controller.signal);
    const points: Date[] = [];
    for (let i = 0; i < 3; i++) {
      await pause(700);
      points.push(new Date());
    }
    await pause(500);
    await stopWriter(writer);
    await pause(300);
    controller.abort();
    await running;

    let previous = 0;
    for (const [i, point] of points.entries()) {
      const target = path.join(dir, `at-${i}.db`);
      await restoreReplica(store, { timestamp: point }, target);
      const { txns, times } = wholeTransactions(target);
      assertPrefix(txns, txns.length);
      for (const txn of txns) assert.ok(times.get(txn)! <= point.getTime(), `transaction ${txn} committed after ${point.toISOString()}`);
      // Everything committed a replication interval (plus a loaded machine's delay) before the point is there.
      const live = wholeTransactions(dbPath).times;
      const due = [...live].filter(([, at]) => at <= point.getTime() - 1000).length;
      assert.ok(txns.length >= due, `restore at ${point.toISOString()} holds ${txns.length} transactions, ${due} were due`);
      assert.ok(txns.length > previous, 'each later point holds more');
      previous = txns.length;
    }
  });

  it('starts a new generation when another connection truncates the WAL while the replicator is stopped, and loses nothing', async () => {
    const { dir, dbPath, store } = await freshCase();
    const app = new Database(dbPath);
    app.pragma('journal_mode = wal');
    app.exec('CREATE TABLE t (v INTEGER)');
    const insert = app.prepare('INSERT INTO t (v) VALUES (?)');
    for (let v = 1; v <= 50; v++) insert.run(v);
    const events: ReplicationEvent[] = [];
    const first = new SqliteReplicator(dbPath, store, { stagingDir, onEvent: (e) => events.push(e) });
    await first.sync();
    await first.sync();
    for (let v = 51; v <= 100; v++) insert.run(v);
    await first.sync();
    await first.close();

    for (let v = 101; v <= 150; v++) insert.run(v);
    app.pragma('wal_checkpoint(TRUNCATE)');
    for (let v = 151; v <= 200; v++) insert.run(v);
    const second = new SqliteReplicator(dbPath, store, { stagingDir, onEvent: (e) => events.push(e) });
    await second.sync();
    for (let v = 201; v <= 250; v++) insert.run(v);
    await second.sync();
    await second.close();
    app.close();

    const reasons = events.flatMap((e) => (e.type === 'generation' ? [e.reason] : []));
    assert.equal(reasons.length, 2, JSON.stringify(reasons));
    assert.match(reasons[1]!, /behind the replicator/);
    const target = path.join(dir, 'restored.db');
    await restoreReplica(store, {}, target);
    const restored = new Database(target, { readonly: true });
    assert.equal((restored.prepare('SELECT count(*) AS c FROM t').get() as { c: number }).c, 250);
    restored.close();
    assert.equal((await store.generations()).length, 2);
  });

  it('keeps one generation when the application asks for a TRUNCATE checkpoint while the replicator runs', async () => {
    const { dir, dbPath, store } = await freshCase();
    const app = new Database(dbPath, { timeout: 50 });
    app.pragma('journal_mode = wal');
    app.exec('CREATE TABLE t (v INTEGER)');
    const insert = app.prepare('INSERT INTO t (v) VALUES (?)');
    const events: ReplicationEvent[] = [];
    const replicator = new SqliteReplicator(dbPath, store, { stagingDir, onEvent: (e) => events.push(e) });
    await replicator.sync();
    for (let v = 1; v <= 100; v++) insert.run(v);
    // The replicator's read transaction holds the WAL: SQLite copies what it may and reports busy.
    const [result] = app.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
    assert.equal(result!.busy, 1);
    for (let v = 101; v <= 200; v++) insert.run(v);
    await replicator.sync();
    await replicator.close();
    app.close();
    assert.equal(events.filter((e) => e.type === 'generation').length, 1);
    const target = path.join(dir, 'restored.db');
    await restoreReplica(store, {}, target);
    const restored = new Database(target, { readonly: true });
    assert.equal((restored.prepare('SELECT count(*) AS c FROM t').get() as { c: number }).c, 200);
    restored.close();
  });

  it('past checkpointBytes copies shipped frames without letting the WAL restart; past restartBytes lets it restart after a short lock and continues the chain', async () => {
    const { dir, dbPath, store } = await freshCase();
    const app = new Database(dbPath);
    app.pragma('journal_mode = wal');
    app.pragma('wal_autocheckpoint = 0');
    app.exec('CREATE TABLE t (v INTEGER, b BLOB)');
    const insert = app.prepare('INSERT INTO t (v, b) VALUES (?, randomblob(3000))');
    const events: ReplicationEvent[] = [];
    const replicator = new SqliteReplicator(dbPath, store, { stagingDir, checkpointBytes: 64 * 1024, restartBytes: 1024 * 1024, onEvent: (e) => events.push(e) });
    const walSalt = async () => (await readFile(`${dbPath}-wal`)).readUInt32BE(16);
    await replicator.sync();
    for (let v = 1; v <= 50; v++) insert.run(v);
    const sizeBefore = (await stat(dbPath)).size;
    await replicator.sync();
    const salt = await walSalt();
    // The application writes on: the WAL does not restart (the read transaction still holds it).
    for (let v = 51; v <= 60; v++) insert.run(v);
    assert.equal(await walSalt(), salt);
    assert.ok((await stat(dbPath)).size > sizeBefore, 'the PASSIVE checkpoint copied shipped pages into the database');
    assert.deepEqual(events.filter((e) => e.type === 'checkpoint').map((e) => e.type === 'checkpoint' && e.restart), [false]);

    for (let v = 61; v <= 400; v++) insert.run(v);
    await replicator.sync();
    const restart = events.filter((e) => e.type === 'checkpoint' && e.restart);
    assert.equal(restart.length, 1);
    assert.ok(restart[0]!.type === 'checkpoint' && restart[0]!.complete && restart[0]!.lockedMs! >= 0);
    for (let v = 401; v <= 410; v++) insert.run(v);
    assert.notEqual(await walSalt(), salt, 'the next write restarted the WAL');
    await replicator.sync();
    await replicator.close();
    app.close();
    assert.equal(events.filter((e) => e.type === 'generation').length, 1);
    assert.ok(events.some((e) => e.type === 'segment' && e.position.index === 1), 'the chain continued at the next index');
    const target = path.join(dir, 'restored.db');
    await restoreReplica(store, {}, target);
    const restored = new Database(target, { readonly: true });
    assert.equal((restored.prepare('SELECT count(*) AS c FROM t').get() as { c: number }).c, 410);
    restored.close();
  });

  it('detects a database replaced under the replicator and starts a generation from the new file', async () => {
    const { dir, dbPath, store } = await freshCase();
    const app = new Database(dbPath);
    app.pragma('journal_mode = wal');
    app.exec("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('old')");
    const events: ReplicationEvent[] = [];
    const replicator = new SqliteReplicator(dbPath, store, { stagingDir, onEvent: (e) => events.push(e) });
    await replicator.sync();
    // As an operator restores a file: the application stops, the file and its side files are
    // replaced, the application starts again and writes.
    app.close();
    const other = path.join(dir, 'other.db');
    const replacement = new Database(other);
    replacement.pragma('journal_mode = wal');
    replacement.exec("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('new'), ('new')");
    replacement.close();
    await rm(`${dbPath}-wal`, { force: true });
    await rm(`${dbPath}-shm`, { force: true });
    await rename(other, dbPath);
    const restarted = new Database(dbPath);
    restarted.exec("INSERT INTO t VALUES ('newer')");
    await replicator.sync();
    restarted.exec("INSERT INTO t VALUES ('newest')");
    await replicator.sync();
    await replicator.close();
    // Closing the replicator's connections to the replaced file left the new database's WAL alone.
    assert.deepEqual(restarted.prepare('SELECT v FROM t').all(), [{ v: 'new' }, { v: 'new' }, { v: 'newer' }, { v: 'newest' }]);
    restarted.close();
    const reasons = events.flatMap((e) => (e.type === 'generation' ? [e.reason] : []));
    assert.deepEqual(reasons, ['start', 'the database file was replaced']);
    const target = path.join(dir, 'restored.db');
    await restoreReplica(store, {}, target);
    const restored = new Database(target, { readonly: true });
    assert.deepEqual(restored.prepare('SELECT v FROM t').all(), [{ v: 'new' }, { v: 'new' }, { v: 'newer' }, { v: 'newest' }]);
    restored.close();
  });

  it('starts a new generation when the WAL at the shipped position no longer holds the frame it shipped (checksum mismatch)', async () => {
    const { dir, dbPath, store } = await freshCase();
    const app = new Database(dbPath);
    app.pragma('journal_mode = wal');
    app.exec('CREATE TABLE t (v INTEGER)');
    const insert = app.prepare('INSERT INTO t (v) VALUES (?)');
    const first = new SqliteReplicator(dbPath, store, { stagingDir });
    await first.sync();
    for (let v = 1; v <= 100; v++) insert.run(v);
    await first.sync();
    (first as unknown as { closeConnections(): void }).closeConnections();
    // The fault a real part cannot be made to produce on cue: the last shipped frame's checksum
    // in the file differs (a WAL copied back from elsewhere, a damaged disk block).
    const wal = await open(`${dbPath}-wal`, 'r+');
    const pageSize = (await wal.read(Buffer.alloc(4), 0, 4, 8)).buffer.readUInt32BE(0);
    const end = first.position!.offset;
    await wal.write(Buffer.from('0123456789abcdef'.slice(0, 8)), 0, 8, end - pageSize - 24 + 16);
    await wal.close();
    for (let v = 101; v <= 120; v++) insert.run(v);
    const events: ReplicationEvent[] = [];
    const second = new SqliteReplicator(dbPath, store, { stagingDir, onEvent: (e) => events.push(e) });
    await second.sync();
    await second.close();
    app.close();
    const reasons = events.flatMap((e) => (e.type === 'generation' ? [e.reason] : []));
    assert.equal(reasons.length, 1);
    assert.match(reasons[0]!, /rewritten behind the replicator \(checksum mismatch at offset \d+\)/);
    const target = path.join(dir, 'restored.db');
    await restoreReplica(store, {}, target);
    const restored = new Database(target, { readonly: true });
    assert.equal((restored.prepare('SELECT count(*) AS c FROM t').get() as { c: number }).c, 120);
    restored.close();
  });

  it('resumes from the stored position when a new replicator takes over, without a new generation', async () => {
    const { dir, dbPath, store } = await freshCase();
    const app = new Database(dbPath);
    app.pragma('journal_mode = wal');
    app.exec('CREATE TABLE t (v INTEGER)');
    const insert = app.prepare('INSERT INTO t (v) VALUES (?)');
    const first = new SqliteReplicator(dbPath, store, { stagingDir });
    await first.sync();
    for (let v = 1; v <= 100; v++) insert.run(v);
    await first.sync();
    // The first one stops without a goodbye (its connections simply go), as when its worker dies.
    (first as unknown as { closeConnections(): void }).closeConnections();
    for (let v = 101; v <= 200; v++) insert.run(v);
    const events: ReplicationEvent[] = [];
    const second = new SqliteReplicator(dbPath, store, { stagingDir, onEvent: (e) => events.push(e) });
    await second.sync();
    await second.close();
    app.close();
    assert.equal(events[0]?.type, 'resumed');
    assert.equal(events.filter((e) => e.type === 'generation').length, 0);
    const target = path.join(dir, 'restored.db');
    const result = await restoreReplica(store, {}, target);
    assert.equal(result.segments, 2);
    const restored = new Database(target, { readonly: true });
    assert.equal((restored.prepare('SELECT count(*) AS c FROM t').get() as { c: number }).c, 200);
    restored.close();
  });

  it('loses no transaction when the replicating process is SIGKILLed mid-run and another takes over (a new generation if the writer restarted the WAL meanwhile), nor when the writer is SIGKILLed', async (t) => {
    const { dir, dbPath, store } = await freshCase();
    const writer = await startWriter(dbPath);
    const repoDir = path.join(dir, 'repo');
    const startReplicator = () => {
      const child = spawn(process.execPath, ['--import', 'tsx', REPLICATOR_SCRIPT, dbPath, repoDir, stagingDir, '100'], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      const events: ReplicationEvent[] = [];
      let buffered = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) if (line) events.push(JSON.parse(line) as ReplicationEvent);
      });
      return { child, events };
    };
    const waitFor = async (events: ReplicationEvent[], count: number) => {
      const deadline = Date.now() + 30_000;
      while (events.filter((e) => e.type === 'segment').length < count) {
        assert.ok(Date.now() < deadline, `only ${events.length} events: ${JSON.stringify(events.slice(-3))}`);
        await pause(50);
      }
    };
    const first = startReplicator();
    await waitFor(first.events, 5);
    first.child.kill('SIGKILL');
    await once(first.child, 'exit');
    const second = startReplicator();
    await waitFor(second.events, 5);
    // The writer's host dies: every commit it made is in the WAL, and the replicator ships it.
    writer.kill('SIGKILL');
    await once(writer, 'exit');
    const lastCommitted = wholeTransactions(dbPath).txns.at(-1)!;
    await pause(1000);
    second.child.kill('SIGTERM');
    const [code] = await once(second.child, 'exit');
    assert.equal(code, 0);

    assert.equal(second.events[0]?.type, 'resumed', `the second replicator continued: ${JSON.stringify(second.events[0])}`);
    const generations = [...first.events, ...second.events].filter((e) => e.type === 'generation');
    const target = path.join(dir, 'restored.db');
    await restoreReplica(store, {}, target);
    assertPrefix(wholeTransactions(target).txns, lastCommitted);
    t.diagnostic(`generations: ${generations.length}, transactions: ${lastCommitted}`);
    // A takeover needs no new generation unless the writer restarted the WAL while no replicator held it.
    if (generations.length > 1) {
      assert.match((generations[1] as { reason: string }).reason, /behind the replicator/);
    } else {
      const gen = (generations[0] as { generation: string }).generation;
      const result = await restoreReplica(store, { generation: gen }, path.join(dir, 'whole-generation.db'));
      assertPrefix(wholeTransactions(path.join(dir, 'whole-generation.db')).txns, lastCommitted);
      assert.ok(result.segments >= 10);
    }
  });

  it('with a 1 s interval, a SIGKILL of the process that both writes and replicates leaves every commit older than 2 s restorable', async (t) => {
    const { dir, dbPath, store } = await freshCase();
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER_SCRIPT, dbPath, 'wal', 'timed'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, SNAPWORKER_TEST_REPLICATE_TO: path.join(dir, 'repo'), SNAPWORKER_TEST_STAGING: stagingDir, SNAPWORKER_TEST_INTERVAL_MS: '1000' },
    });
    children.push(child);
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    assert.equal(line.toString().trim(), 'ready');
    // Several rounds, then the kill lands at no particular point of one.
    await pause(4000 + Math.random() * 1000);
    const killedAt = Date.now();
    child.kill('SIGKILL');
    await once(child, 'exit');

    // The live database after the crash (SQLite recovers its WAL) says when each transaction committed.
    const live = wholeTransactions(dbPath);
    const target = path.join(dir, 'restored.db');
    await restoreReplica(store, {}, target);
    const { txns } = wholeTransactions(target);
    assertPrefix(txns, txns.length);
    assert.ok(txns.length <= live.txns.length);
    const due = [...live.times].filter(([, at]) => at < killedAt - 2000).length;
    const missing = [...live.times].filter(([txn]) => txn > txns.length).map(([, at]) => killedAt - at);
    t.diagnostic(`${txns.length} of ${live.txns.length} transactions restorable; the oldest commit not shipped was ${missing.length ? Math.max(...missing) : 0} ms old at the kill`);
    assert.ok(txns.length >= due, `${due} transactions committed more than 2 s before the kill, ${txns.length} restorable`);
  });

  it('refuses to restore from a damaged segment or across a missing one, leaving the target as it was', async () => {
    const { dir, dbPath, store } = await freshCase();
    const app = new Database(dbPath);
    app.pragma('journal_mode = wal');
    app.exec('CREATE TABLE t (v INTEGER)');
    const insert = app.prepare('INSERT INTO t (v) VALUES (?)');
    const replicator = new SqliteReplicator(dbPath, store, { stagingDir });
    await replicator.sync();
    for (let round = 0; round < 3; round++) {
      for (let v = 0; v < 20; v++) insert.run(round * 100 + v);
      await replicator.sync();
    }
    await replicator.close();
    app.close();
    const [generation] = await store.generations();
    const segments = (await store.walObjects(generation!)).filter((o) => o.kind === 'segment');
    assert.equal(segments.length, 3);
    const target = path.join(dir, 'target.db');
    await writeFile(target, 'the old target');
    const repoDir = path.join(dir, 'repo');

    const middle = path.join(repoDir, segments[1]!.key);
    const original = await readFile(middle);
    const damaged = Buffer.from(original);
    damaged[damaged.length - 100] ^= 0xff;
    await writeFile(middle, damaged);
    await assert.rejects(restoreReplica(store, {}, target, { replace: true }), (err: Error) => err instanceof IntegrityError && /\.seg: frame \d+ fails its salt or checksum check/.test(err.message));

    await rm(middle);
    await assert.rejects(
      restoreReplica(store, {}, target, { replace: true }),
      (err: Error) => err instanceof IntegrityError && /does not continue the WAL chain/.test(err.message),
    );
    assert.equal(await readFile(target, 'utf8'), 'the old target');
    assert.deepEqual((await readdir(dir)).sort(), ['app.db', 'repo', 'target.db']);
  });

  it('retention removes the generations no point inside the window needs, and every point inside it stays restorable', async () => {
    const { dir, dbPath, store } = await freshCase();
    const replicator = new SqliteReplicator(dbPath, store, { stagingDir });
    const writeDatabase = async (value: number) => {
      const next = path.join(dir, 'next.db');
      const db = new Database(next);
      db.pragma('journal_mode = wal');
      db.exec(`CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (${value})`);
      db.close();
      await rm(`${dbPath}-wal`, { force: true });
      await rm(`${dbPath}-shm`, { force: true });
      await rename(next, dbPath);
    };
    const stamps: Date[] = [];
    for (const value of [1, 2, 3]) {
      await writeDatabase(value);
      await replicator.sync();
      await pause(30);
      stamps.push(new Date());
      await pause(30);
    }
    await replicator.close();
    const before = await store.generations();
    assert.equal(before.length, 3);

    // The window starts between the second and the third generation: the second covers its start.
    const removed = await applyReplicaRetention(store, new Date(stamps[1]!.getTime() + 10));
    assert.deepEqual(removed, [before[0]]);
    assert.deepEqual(await store.generations(), before.slice(1));
    const valueAt = async (point: Date) => {
      const target = path.join(dir, `at-${point.getTime()}.db`);
      await restoreReplica(store, { timestamp: point }, target);
      const db = new Database(target, { readonly: true });
      try {
        return (db.prepare('SELECT v FROM t').get() as { v: number }).v;
      } finally {
        db.close();
      }
    };
    assert.equal(await valueAt(new Date(stamps[1]!.getTime() + 10)), 2);
    assert.equal(await valueAt(stamps[2]!), 3);
    await assert.rejects(valueAt(stamps[0]!), (err: Error) => err instanceof NotFoundError);
  });

  it('refuses a database not in WAL mode with one line', async () => {
    const { dbPath, store } = await freshCase();
    const db = new Database(dbPath);
    db.exec('CREATE TABLE t (v INTEGER)');
    db.close();
    const replicator = new SqliteReplicator(dbPath, store, { stagingDir });
    await assert.rejects(replicator.sync(), (err: Error) => err instanceof InvalidInputError && /delete journal mode; replication needs WAL mode/.test(err.message));
    assert.deepEqual(await readdir(path.dirname(dbPath)), ['app.db']);
  });
});

describe('SQLite replication: restore jobs through the queue', () => {
  const fixture = useTestWorker();

  it('restores a replica to a timestamp and to the newest state through a queued restore job', async () => {
    const { environment } = fixture;
    const dbPath = path.join(environment.root, 'orders.db');
    const app = new Database(dbPath);
    app.pragma('journal_mode = wal');
    app.exec('CREATE TABLE t (v INTEGER)');
    const insert = app.prepare('INSERT INTO t (v) VALUES (?)');
    const store = new ReplicaStore(new FsDriver({ root: environment.repoDir }), 'orders');
    const replicator = new SqliteReplicator(dbPath, store, { stagingDir: environment.root });
    await replicator.sync();
    for (let v = 1; v <= 10; v++) insert.run(v);
    await replicator.sync();
    await pause(20);
    const between = new Date();
    await pause(20);
    for (let v = 11; v <= 25; v++) insert.run(v);
    await replicator.sync();
    await replicator.close();
    app.close();

    const count = (file: string) => {
      const db = new Database(file, { readonly: true });
      try {
        return (db.prepare('SELECT count(*) AS c FROM t').get() as { c: number }).c;
      } finally {
        db.close();
      }
    };
    const earlier = path.join(environment.root, 'earlier.db');
    const job = await environment.queue.add('restore', { v: 1, snapshot: 'latest', source: 'orders', target: `sqlite://${earlier}`, replica: { timestamp: between.toISOString() } });
    const result = (await job.waitUntilFinished(environment.events, 60_000)) as { replica: { segments: number } };
    assert.equal(result.replica.segments, 1);
    assert.equal(count(earlier), 10);
    const newest = path.join(environment.root, 'newest.db');
    await (await environment.queue.add('restore', { v: 1, snapshot: 'latest', source: 'orders', target: `sqlite://${newest}`, replica: {} })).waitUntilFinished(environment.events, 60_000);
    assert.equal(count(newest), 25);
  });

  it('fails a replica restore that names a snapshot at once, with one line naming the field', async () => {
    const { environment } = fixture;
    const job = await environment.queue.add(
      'restore',
      { v: 1, snapshot: '20261129T161500123Z-1a2b3c4d', source: 'orders', target: `sqlite://${path.join(environment.root, 'x.db')}`, replica: {} },
      { attempts: 3 },
    );
    await job.waitUntilFinished(environment.events, 60_000).then(
      () => assert.fail('should have failed'),
      () => {},
    );
    const failed = (await environment.queue.getJob(job.id!))!;
    assert.match(failed.failedReason, /with replica, snapshot must be "latest"/);
    assert.equal(failed.attemptsMade, 1);
  });
});
