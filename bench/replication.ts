/**
 * What continuous replication costs the application, and how far it trails (docs/benchmarks.md,
 * "SQLite replication").
 *
 *   node --import tsx bench/replication.ts [--seconds=8] [--rounds=3] [--dir=<tmp>] [--checkpoint-mib=4] [--keep]
 *     [--part=all|writer|restore] [--restore-mib=64] [--restore-segments=1000]   (1 GiB: --restore-mib=1024 --restore-segments=10000)
 *
 * 1. Writer throughput: `replication-writer.ts` (a separate process, one 200-byte row per
 *    transaction, as fast as it can) for `--seconds`, without and with a replicator running in
 *    this process (the `SqliteReplicator` the `replicate` job runs, interval 1 s, into a file
 *    repository on the same disk), and with it while the writer leaves checkpoints to the replicator
 *    (`wal_autocheckpoint = 0`); rounds alternate, medians reported, overhead = 1 − with/without.
 * 2. Lag under a steady 1,000 transactions/s for 3 × `--seconds`: sampled every 100 ms as the
 *    `replicate` job and `snapworker_replication_lag_seconds` define it (now minus the later of
 *    the last sync's start and the last segment's read time); p50, p99 and max.
 * 3. Restore time: a database of `--restore-mib` (4,000-byte random rows) is snapshotted by the
 *    replicator, then `--restore-segments` single-row updates each shipped by a sync of their own
 *    (one segment each, the replicator's checkpoints in between as in production); then
 *    `restoreReplica` to the newest state (snapshot, every segment, `integrity_check`, atomic
 *    rename) is timed, beside `cp` of the same database, and the restored rows are compared
 *    with the source's by SHA-256. The page cache is warm (the bench cannot drop it).
 * Benchmarks are not tests: nothing here asserts a figure.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FsDriver } from '../shared/storage/fs/fs-driver.js';
import { ReplicaStore } from '../shared/kinds/sqlite/replication/replica-store.js';
import { SqliteReplicator } from '../shared/kinds/sqlite/replication/replicator.js';
import { lagSeconds } from '../shared/kinds/sqlite/replication/replication-status.js';
import { listGenerations } from '../shared/kinds/sqlite/replication/list-generations.js';
import { restoreReplica } from '../shared/kinds/sqlite/replication/restore-replica.js';
import Database from 'better-sqlite3';

const WRITER = fileURLToPath(new URL('./replication-writer.ts', import.meta.url));
const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    dir: { type: 'string', default: os.tmpdir() },
    keep: { type: 'boolean', default: false },
    'checkpoint-mib': { type: 'string', default: '4' },
    part: { type: 'string', default: 'all' },
    'restore-mib': { type: 'string', default: '64' },
    'restore-segments': { type: 'string', default: '1000' },
  },
});
if (!['all', 'writer', 'restore'].includes(args.part!)) throw new Error(`--part: all, writer or restore, not "${args.part}"`);
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);

function runWriter(dbPath: string, forSeconds: number, rate: number, autocheckpoint = 1000): Promise<{ committed: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dbPath, String(forSeconds), String(rate), String(autocheckpoint)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`writer exited ${code}`))));
  });
}

/** Runs `work` with a replicator of `dbPath` running beside it; samples its lag every 100 ms. */
async function withReplicator<T>(
  dir: string,
  dbPath: string,
  work: () => Promise<T>,
): Promise<{ result: T; lags: number[]; segments: number; segmentBytes: number; cpuSecondsPerSecond: number }> {
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  const store = new ReplicaStore(new FsDriver({ root: path.join(dir, 'repo') }), 'bench');
  const status: { syncedFrom?: string; shippedAt?: string } = {};
  let segments = 0;
  let segmentBytes = 0;
  const replicator = new SqliteReplicator(dbPath, store, {
    stagingDir: dir,
    intervalMs: 1000,
    checkpointBytes: Number(args['checkpoint-mib']) * 1024 * 1024,
    onEvent: (event) => {
      if (event.type === 'synced') status.syncedFrom = event.startedAt.toISOString();
      if (event.type === 'segment') {
        status.shippedAt = event.position.at.toISOString();
        segments += 1;
        segmentBytes += event.bytes;
      }
      if (event.type === 'error') console.error(`replicator: ${event.message}`);
    },
  });
  const controller = new AbortController();
  const running = replicator.run(controller.signal);
  const lags: number[] = [];
  const sampler = setInterval(() => {
    const lag = lagSeconds(status);
    if (lag !== undefined) lags.push(lag);
  }, 100);
  try {
    const result = await work();
    const cpu = process.cpuUsage(cpuBefore);
    return { result, lags, segments, segmentBytes, cpuSecondsPerSecond: (cpu.user + cpu.system) / 1e6 / ((performance.now() - startedAt) / 1000) };
  } finally {
    clearInterval(sampler);
    controller.abort();
    await running;
  }
}

const median = (values: number[]) => percentile(values, 0.5);
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

const root = await mkdtemp(path.join(args.dir!, 'snapworker-bench-replication-'));
try {
  console.log(`node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  if (args.part !== 'restore') await benchWriter();
  if (args.part !== 'writer') await benchRestore(path.join(root, 'restore'), Number(args['restore-mib']), Number(args['restore-segments']));
} finally {
  if (!args.keep) await rm(root, { recursive: true, force: true });
}

/** 1 and 2: the writer's throughput without and with replication, then the lag at 1,000/s. */
async function benchWriter(): Promise<void> {
  const variants = [
    { label: 'without replication', replicated: false, autocheckpoint: 1000 },
    { label: 'with replication', replicated: true, autocheckpoint: 1000 },
    { label: 'with replication, application checkpoints off', replicated: true, autocheckpoint: 0 },
  ];
  const rates = variants.map(() => [] as number[]);
  for (let round = 1; round <= rounds; round++) {
    for (const [i, variant] of variants.entries()) {
      const dir = path.join(root, `round-${round}-${i}`);
      await mkdir(dir);
      const dbPath = path.join(dir, 'app.db');
      // The table exists before the replicator starts, as in an application.
      await runWriter(dbPath, 0.2, 0);
      const write = () => runWriter(dbPath, seconds, 0, variant.autocheckpoint);
      const replicating = variant.replicated ? await withReplicator(dir, dbPath, write) : undefined;
      const run = replicating?.result ?? (await write());
      const rate = run.committed / run.seconds;
      rates[i]!.push(rate);
      const cpu = replicating ? `; the replicator used ${replicating.cpuSecondsPerSecond.toFixed(2)} CPU s/s` : '';
      console.log(`round ${round}, ${variant.label}: ${rate.toFixed(0)} transactions/s${cpu}`);
      await rm(dir, { recursive: true, force: true });
    }
  }
  const base = median(rates[0]!);
  console.log(`writer throughput, median of ${rounds}: ${variants.map((v, i) => `${v.label} ${median(rates[i]!).toFixed(0)}/s${i ? ` (overhead ${((1 - median(rates[i]!) / base) * 100).toFixed(1)} %)` : ''}`).join('; ')}`);
  // On a shared machine the load moves between rounds; a round's variants run back to back, so
  // the ratio within a round is the steadier figure.
  for (const [i, variant] of variants.entries()) {
    if (i === 0) continue;
    const paired = rates[i]!.map((rate, round) => 1 - rate / rates[0]![round]!);
    console.log(`overhead ${variant.label}, median of the rounds' own ratios: ${(median(paired) * 100).toFixed(1)} % (rounds: ${paired.map((o) => (o * 100).toFixed(0)).join(', ')} %)`);
  }

  const dir = path.join(root, 'steady');
  await mkdir(dir);
  const dbPath = path.join(dir, 'app.db');
  await runWriter(dbPath, 0.2, 0);
  const steady = await withReplicator(dir, dbPath, () => runWriter(dbPath, 3 * seconds, 1000));
  // The first seconds include the generation's snapshot; lag is read once the chain runs.
  const lags = steady.lags.slice(20);
  console.log(
    `steady ${(steady.result.committed / steady.result.seconds).toFixed(0)} transactions/s for ${steady.result.seconds.toFixed(0)} s: ` +
      `lag p50 ${median(lags).toFixed(2)} s, p99 ${percentile(lags, 0.99).toFixed(2)} s, max ${Math.max(...lags).toFixed(2)} s; ` +
      `${steady.segments} segments, ${(steady.segmentBytes / 1024 / 1024).toFixed(1)} MiB; the replicator used ${steady.cpuSecondsPerSecond.toFixed(2)} CPU s/s`,
  );
}

/** 3: the time to restore a database of `mib` MiB whose generation holds `segments` segments. */
async function benchRestore(dir: string, mib: number, segments: number): Promise<void> {
  await mkdir(dir);
  const dbPath = path.join(dir, 'app.db');
  const db = new Database(dbPath);
  db.pragma('journal_mode = wal');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB NOT NULL)');
  const rows = Math.ceil((mib * 1024 * 1024) / 4096);
  const fill = db.prepare('WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) INSERT INTO t (b) SELECT randomblob(4000) FROM n');
  let built = performance.now();
  for (let done = 0; done < rows; done += 10_000) fill.run(Math.min(10_000, rows - done));
  db.pragma('wal_checkpoint(TRUNCATE)');
  const size = (await stat(dbPath)).size;
  built = (performance.now() - built) / 1000;

  const store = new ReplicaStore(new FsDriver({ root: path.join(dir, 'repo') }), 'bench');
  const replicator = new SqliteReplicator(dbPath, store, { stagingDir: dir, checkpointBytes: Number(args['checkpoint-mib']) * 1024 * 1024 });
  let shipping = performance.now();
  await replicator.sync();
  const update = db.prepare('UPDATE t SET b = randomblob(4000) WHERE id = ?');
  for (let i = 0; i < segments; i++) {
    update.run(1 + Math.floor(Math.random() * rows));
    await replicator.sync();
  }
  await replicator.close();
  shipping = (performance.now() - shipping) / 1000;
  const [generation] = await listGenerations(store);
  console.log(
    `restore: database ${(size / 1024 / 1024).toFixed(0)} MiB (built in ${built.toFixed(1)} s); one generation, ${generation!.segments} segments of ${(generation!.segmentBytes / 1024 / 1024).toFixed(1)} MiB (shipped in ${shipping.toFixed(1)} s)`,
  );

  const copied = path.join(dir, 'copy.db');
  let cp = performance.now();
  execFileSync('cp', [dbPath, copied]);
  cp = (performance.now() - cp) / 1000;
  await rm(copied);
  const target = path.join(dir, 'restored.db');
  let restoring = performance.now();
  const result = await restoreReplica(store, {}, target);
  restoring = (performance.now() - restoring) / 1000;
  const same = rowsDigest(db) === rowsDigest(new Database(target, { readonly: true }), true);
  db.close();
  console.log(
    `restore of the newest state: ${restoring.toFixed(1)} s (${(size / 1024 / 1024 / restoring).toFixed(0)} MiB/s, ${result.segments} segments applied, integrity_check included); ` +
      `cp of the database: ${cp.toFixed(2)} s; rows identical to the source: ${same ? 'yes' : 'NO'}`,
  );
}

/** SHA-256 over every row, in key order (closes `db` when `close`). */
function rowsDigest(db: Database.Database, close = false): string {
  const hash = createHash('sha256');
  try {
    for (const row of db.prepare('SELECT id, b FROM t ORDER BY id').iterate() as Iterable<{ id: number; b: Buffer }>) {
      hash.update(String(row.id));
      hash.update(row.b);
    }
    return hash.digest('hex');
  } finally {
    if (close) db.close();
  }
}
