import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as pause } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { FsDriver } from '../shared/storage/fs/fs-driver.js';
import { ReplicaStore } from '../shared/kinds/sqlite/replication/replica-store.js';
import { SqliteReplicator } from '../shared/kinds/sqlite/replication/replicator.js';
import { restoreReplica } from '../shared/kinds/sqlite/replication/restore-replica.js';
import { cli, spawnCli } from './helpers/cli.js';
import { createTestEnvironment, spawnWorker, type TestEnvironment, type WorkerProcess } from './helpers/worker-fixture.js';

/** The values of table t, in order. */
function values(file: string): number[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT v FROM t ORDER BY v').all() as { v: number }[]).map((row) => row.v);
  } finally {
    db.close();
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/**
 * A real database `orders.db` in `dir`, replicated by the real replicator into the file
 * repository at `repoDir` as replica `orders`: values 1-10, 11-25 and 26-40 in three batches,
 * one transaction per value. Resolves with a time after each batch.
 */
async function replicateBatches(dir: string, repoDir: string): Promise<Date[]> {
  const marks: Date[] = [];
  const dbPath = path.join(dir, 'orders.db');
  const app = new Database(dbPath);
  app.pragma('journal_mode = wal');
  app.exec('CREATE TABLE t (v INTEGER)');
  const insert = app.prepare('INSERT INTO t (v) VALUES (?)');
  const replicator = new SqliteReplicator(dbPath, new ReplicaStore(new FsDriver({ root: repoDir }), 'orders'), { stagingDir: dir });
  await replicator.sync();
  for (const [from, to] of [[1, 10], [11, 25], [26, 40]] as const) {
    for (const v of range(from, to)) insert.run(v);
    await replicator.sync();
    await pause(20);
    marks.push(new Date());
    await pause(20);
  }
  await replicator.close();
  app.close();
  return marks;
}

describe('point-in-time restore on the command line', () => {
  let root: string;
  let repo: string;
  /** Times between the three batches: 1-10 committed before the first, 11-25 before the second. */
  const marks: Date[] = [];

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-replica-cli-'));
    repo = `file://${path.join(root, 'repo')}`;
    const init = await cli(['init', '--repo', repo]);
    assert.equal(init.code, 0, init.stderr);
    marks.push(...(await replicateBatches(root, path.join(root, 'repo'))));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('restores to a timestamp exactly the transactions committed before it, and the newest state with --replica {}', async () => {
    for (const [i, expected] of [[0, range(1, 10)], [1, range(1, 25)]] as const) {
      const target = path.join(root, `at-${i}.db`);
      const run = await cli(['restore', `sqlite://${target}`, '--source', 'orders', '--timestamp', marks[i]!.toISOString(), '--repo', repo, '--local', '--json']);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(values(target), expected);
      assert.equal(JSON.parse(run.stdout).target, `sqlite://${target}`);
    }
    // A zone other than UTC names the same instant.
    const shifted = new Date(marks[0]!.getTime() + 2 * 3600_000).toISOString().replace('Z', '+02:00');
    const zoned = path.join(root, 'zoned.db');
    const run = await cli(['restore', 'latest', `sqlite://${zoned}`, '--source', 'orders', '--timestamp', shifted, '--repo', repo, '--local']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(values(zoned), range(1, 10));

    const newest = path.join(root, 'newest.db');
    const all = await cli(['restore', `sqlite://${newest}`, '--source', 'orders', '--replica', '{}', '--repo', repo, '--local']);
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(values(newest), range(1, 40));
  });

  it('replicates as a sidecar with --local until SIGTERM, ships what is committed before it exits 130', async () => {
    const dbPath = path.join(root, 'sidecar.db');
    const app = new Database(dbPath);
    app.pragma('journal_mode = wal');
    app.exec('CREATE TABLE t (v INTEGER)');
    const insert = app.prepare('INSERT INTO t (v) VALUES (?)');
    for (const v of range(1, 50)) insert.run(v);
    const sidecar = spawnCli(['replicate', `sqlite://${dbPath}`, '--local', '--repo', repo, '--interval', '1s']);
    const store = new ReplicaStore(new FsDriver({ root: path.join(root, 'repo') }), 'sidecar');
    const deadline = Date.now() + 60_000;
    while ((await store.generations()).length === 0) {
      assert.ok(Date.now() < deadline, `no generation yet: ${sidecar.stderr()}`);
      await pause(100);
    }
    for (const v of range(51, 80)) insert.run(v);
    sidecar.child.kill('SIGTERM');
    const { code, stderr } = await sidecar.done;
    app.close();
    assert.equal(code, 130, stderr);
    const target = path.join(root, 'sidecar-restored.db');
    await restoreReplica(store, {}, target);
    assert.deepEqual(values(target), range(1, 80));
  });

  it('restores to the end of a generation and of a WAL index within it', async () => {
    const ls = await cli(['ls', '--source', 'orders', '--generations', '--repo', repo, '--json']);
    assert.equal(ls.code, 0, ls.stderr);
    const [generation] = JSON.parse(ls.stdout) as { generation: string; end: { index: number } }[];
    const target = path.join(root, 'generation.db');
    const run = await cli(['restore', `sqlite://${target}`, '--source', 'orders', '--generation', generation!.generation, '--index', String(generation!.end.index), '--repo', repo, '--local']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(values(target), range(1, 40));
  });

  it('lists the generations of a replica with their positions, segments and bytes, as a table and as JSON', async () => {
    const ls = await cli(['ls', '--source', 'orders', '--generations', '--repo', repo, '--json']);
    assert.equal(ls.code, 0, ls.stderr);
    const generations = JSON.parse(ls.stdout) as { generation: string; createdAt: string; lastReadAt: string; reason: string; snapshot: { index: number; offset: number }; end: { index: number; offset: number }; segments: number; segmentBytes: number }[];
    assert.equal(generations.length, 1);
    const [g] = generations;
    assert.match(g!.generation, /^\d{8}T\d{9}Z-[0-9a-f]{8}$/);
    assert.equal(g!.reason, 'start');
    assert.equal(g!.segments, 3, 'one segment per sync that found new frames');
    assert.ok(g!.segmentBytes > 0);
    assert.ok(g!.end.offset > g!.snapshot.offset || g!.end.index > g!.snapshot.index, 'the last position is past the first');
    assert.ok(new Date(g!.lastReadAt) >= new Date(g!.createdAt) && new Date(g!.lastReadAt) < marks[2]!);

    const table = await cli(['ls', '--source', 'orders', '--generations', '--repo', repo]);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^GENERATION\s+START \(UTC\)\s+END \(UTC\)\s+FIRST\s+LAST\s+SEGMENTS\s+BYTES\s+REASON$/);
    assert.ok(lines[1]!.startsWith(`${g!.generation}  ${g!.createdAt.slice(0, 19).replace('T', ' ')}`), lines[1]);
    assert.match(lines[1]!, new RegExp(` ${g!.end.index}/${g!.end.offset} +3 `));
    assert.equal(lines.at(-1), '1 generation of replica orders');

    const none = await cli(['ls', '--source', 'nothing-here', '--generations', '--repo', repo, '--json']);
    assert.equal(none.code, 0, none.stderr);
    assert.deepEqual(JSON.parse(none.stdout), []);
    const unnamed = await cli(['ls', '--generations', '--repo', repo]);
    assert.equal(unnamed.code, 2);
    assert.equal(unnamed.stderr, 'snapworker: ls: --generations needs --source NAME, the replica name (as "replicate ls" shows it)\n');
  });

  it('refuses contradictory or malformed point flags with one line, before touching anything', async () => {
    const target = `sqlite://${path.join(root, 'refused.db')}`;
    const gen = '20261129T161500123Z-1a2b3c4d';
    const cases: [string[], RegExp][] = [
      [['--index', '3'], /^snapworker: restore: --index needs --generation/],
      [['--timestamp', '2026-11-29T16:15:00Z', '--generation', gen], /^snapworker: restore: --timestamp and --generation\/--index name the point two ways/],
      [['--timestamp', 'yesterday'], /^snapworker: restore: --timestamp "yesterday" is not an ISO 8601 time with a zone/],
      [['--timestamp', '2026-11-29T16:15:00'], /^snapworker: restore: --timestamp "2026-11-29T16:15:00" is not an ISO 8601 time with a zone/],
      [['--generation', 'g1'], /^snapworker: restore: --generation "g1" is not a generation id/],
      [['--generation', gen, '--index=-1'], /^snapworker: restore: --index "-1" is not a WAL index/],
      [['--replica', '{}', '--timestamp', '2026-11-29T16:15:00Z'], /^snapworker: restore: --replica JSON gives the whole point/],
    ];
    for (const [flags, expected] of cases) {
      const run = await cli(['restore', target, '--source', 'orders', ...flags, '--repo', repo, '--local']);
      assert.equal(run.code, 2, `${flags.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, expected);
      assert.equal(run.stderr.split('\n').length, 2, `one line: ${run.stderr}`);
    }
    const named = await cli(['restore', gen, target, '--source', 'orders', '--timestamp', '2026-11-29T16:15:00Z', '--repo', repo, '--local']);
    assert.equal(named.code, 2);
    assert.match(named.stderr, /restore: --timestamp restores from the replica named by --source; give no snapshot \(or "latest"\), not "20261129T161500123Z-1a2b3c4d"\n$/);
    const unnamed = await cli(['restore', target, '--timestamp', '2026-11-29T16:15:00Z', '--repo', repo, '--local']);
    assert.equal(unnamed.code, 2);
    assert.equal(unnamed.stderr, 'snapworker: restore: --timestamp needs --source NAME, the replica to restore from (as "replicate ls" shows it)\n');
    const twoKinds = await cli(['restore', target, 'dir:///tmp/x', '--source', 'orders', '--replica', '{}', '--repo', repo, '--local']);
    assert.equal(twoKinds.code, 2);
    assert.equal(twoKinds.stderr, `snapworker: restore: --replica restores one SQLite database: give one sqlite:///abs/db target, not ${target} dir:///tmp/x\n`);
    await assert.rejects(stat(path.join(root, 'refused.db')), 'nothing restored');
  });
});

describe('point-in-time restore on the command line, through the queue and a worker process', () => {
  let environment: TestEnvironment;
  let worker: WorkerProcess;
  before(async () => {
    environment = await createTestEnvironment();
    const init = await cli(['init'], environment.env);
    assert.equal(init.code, 0, init.stderr);
    worker = spawnWorker(environment);
  });
  after(async () => {
    worker.child.kill('SIGTERM');
    await worker.exited;
    await environment.cleanup();
  });

  it('enqueues a restore to a timestamp that a worker runs; the target holds exactly the transactions committed before it', async () => {
    const marks = await replicateBatches(environment.root, environment.repoDir);
    const target = path.join(environment.root, 'restored.db');
    const run = await cli(['restore', `sqlite://${target}`, '--source', 'orders', '--timestamp', marks[1]!.toISOString(), '--wait', '--json'], environment.env);
    assert.equal(run.code, 0, `${run.stderr}\nworker: ${worker.logs()}`);
    assert.equal(JSON.parse(run.stdout).replica.segments, 2);
    assert.deepEqual(values(target), range(1, 25));
  });
});
