/**
 * `npm run bench -- --replication [--full] [--rounds N]`: what continuous SQLite replication
 * costs the application, how far it trails, and how long a restore takes (issue 18; the figures
 * go to the "SQLite replication" section of docs/benchmarks.md).
 *
 * 1. Writer throughput: `replication-writer.ts` (a separate process, one 200-byte row per
 *    transaction, as fast as it can) for `seconds`, without and with a replicator running in
 *    this process (the `SqliteReplicator` the `replicate` job runs, interval 1 s, default
 *    checkpoint thresholds, into a file repository on the same disk). Like is compared with like:
 *    each variant with replication has a partner without it that differs in nothing else (same
 *    fresh database, WAL mode, `synchronous = NORMAL`, the same application checkpoint policy):
 *    SQLite's default automatic checkpoint (1,000 pages), and none (`wal_autocheckpoint = 0`,
 *    Litestream's advice for busy databases; without a replicator nobody checkpoints then, and the
 *    WAL grows for the whole run). Rounds alternate the variants, each round starting one later;
 *    medians reported; overhead = 1 − with/without per round and of the medians. Beside the
 *    throughput, where the writer's time went: its own CPU per transaction (steady on a shared
 *    machine, where throughput follows the CPU the writer is given), its wait for a CPU, its
 *    commits that took 2 ms or more (lock waits, its own checkpoint's fsyncs); the replicator's
 *    CPU; how long each checkpoint that lets the WAL restart held the write lock.
 * 2. Lag under a steady 1,000 transactions/s for 3 × `seconds`: sampled every 100 ms as the
 *    `replicate` job and `snapworker_replication_lag_seconds` define it (now minus the later of
 *    the last sync's start and the last segment's read time); p50, p99 and max.
 * 3. Restore time: a database of `restoreMib` (4,000-byte random rows) is snapshotted by the
 *    replicator, then `restoreSegments` single-row updates each shipped by a sync of their own
 *    (one segment each); then `restoreReplica` to the newest state (snapshot, every segment,
 *    `integrity_check`, atomic rename) is timed, beside `cp` of the same database, and the
 *    restored rows are compared with the source's by SHA-256. The page cache is warm.
 * Benchmarks are not tests: nothing here asserts a figure.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { FsDriver } from '../shared/storage/fs/fs-driver.js';
import { ReplicaStore } from '../shared/kinds/sqlite/replication/replica-store.js';
import { SqliteReplicator, type ReplicatorOptions } from '../shared/kinds/sqlite/replication/replicator.js';
import { lagSeconds } from '../shared/kinds/sqlite/replication/replication-status.js';
import { listGenerations } from '../shared/kinds/sqlite/replication/list-generations.js';
import { restoreReplica } from '../shared/kinds/sqlite/replication/restore-replica.js';
import { median } from './median.js';

const WRITER = fileURLToPath(new URL('./replication-writer.ts', import.meta.url));

export interface ReplicationBenchOptions {
  /** Seconds per writer run. */
  seconds: number;
  rounds: number;
  /** Size of the restored database, MiB. */
  restoreMib: number;
  /** Segments in the restored generation. */
  restoreSegments: number;
  /** Scratch directory (databases and file repositories). */
  work: string;
  log: (line: string) => void;
}

/** One line of the replication table. */
export interface ReplicationFigure {
  figure: string;
  value: string;
}

/** What `replication-writer.ts` prints (see there). */
interface WriterRun {
  committed: number;
  seconds: number;
  cpuSeconds: number;
  runQueueSeconds: number;
  slowCommits: number;
  slowSeconds: number;
}

interface ReplicatorRun<T> {
  result: T;
  lags: number[];
  segments: number;
  segmentBytes: number;
  cpuSecondsPerSecond: number;
  lockedMs: number[];
}

/** Runs the three parts; resolves with the table's rows. */
export async function runReplicationBench(options: ReplicationBenchOptions): Promise<ReplicationFigure[]> {
  await mkdir(options.work, { recursive: true });
  const root = await mkdtemp(path.join(options.work, 'replication-'));
  try {
    return [...(await benchWriter(root, options)), ...(await benchRestore(path.join(root, 'restore'), options))];
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

function runWriter(dbPath: string, forSeconds: number, rate: number, autocheckpoint = 1000): Promise<WriterRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dbPath, String(forSeconds), String(rate), String(autocheckpoint)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as WriterRun) : reject(new Error(`replication writer exited ${code}`))));
  });
}

/** Runs `work` with a replicator of `dbPath` running beside it in this process; samples its lag every 100 ms. */
async function withReplicator<T>(dir: string, dbPath: string, work: () => Promise<T>, settings: Partial<ReplicatorOptions> = {}): Promise<ReplicatorRun<T>> {
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  const store = new ReplicaStore(new FsDriver({ root: path.join(dir, 'repo') }), 'bench');
  const status: { syncedFrom?: string; shippedAt?: string } = {};
  const run = { segments: 0, segmentBytes: 0, lockedMs: [] as number[] };
  const replicator = new SqliteReplicator(dbPath, store, {
    stagingDir: dir,
    intervalMs: 1000,
    ...settings,
    onEvent: (event) => {
      if (event.type === 'synced') status.syncedFrom = event.startedAt.toISOString();
      if (event.type === 'segment') {
        status.shippedAt = event.position.at.toISOString();
        run.segments += 1;
        run.segmentBytes += event.bytes;
      }
      if (event.type === 'checkpoint' && event.lockedMs !== undefined) run.lockedMs.push(event.lockedMs);
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
    return { result, lags, ...run, cpuSecondsPerSecond: (cpu.user + cpu.system) / 1e6 / ((performance.now() - startedAt) / 1000) };
  } finally {
    clearInterval(sampler);
    controller.abort();
    await running;
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

/** Where a writer run's wall time went (the parts overlap: a commit can wait for a CPU). */
function timeSplit(run: WriterRun): string {
  const perSecond = (seconds: number) => (seconds / run.seconds).toFixed(2);
  return `of each second ran ${perSecond(run.cpuSeconds)} s, waited for a CPU ${perSecond(run.runQueueSeconds)} s, ${perSecond(run.slowSeconds)} s in ${run.slowCommits} commits of 2 ms or more`;
}

const pct = (fraction: number) => `${(fraction * 100).toFixed(0)} %`;
const rate = (run: WriterRun) => run.committed / run.seconds;
const cpuPerTxn = (run: WriterRun) => (run.cpuSeconds / run.committed) * 1e6;

/** A writer run's setting: the application's checkpoint policy, and the replicator's options when one runs. */
interface Variant {
  label: string;
  /** The application's `wal_autocheckpoint`, pages (0: off). */
  autocheckpoint: number;
  replicator?: Partial<ReplicatorOptions>;
  /** Index of the variant without replication this one is compared with (same checkpoint policy). */
  baseline?: number;
}

const VARIANTS: Variant[] = [
  { label: 'application checkpoints at 1,000 pages (SQLite default), no replication', autocheckpoint: 1000 },
  { label: 'application checkpoints at 1,000 pages, with replication', autocheckpoint: 1000, replicator: {}, baseline: 0 },
  { label: 'application checkpoints off, no replication (nobody checkpoints: the WAL grows)', autocheckpoint: 0 },
  { label: 'application checkpoints off, with replication (its checkpoints bound the WAL)', autocheckpoint: 0, replicator: {}, baseline: 2 },
];

/** 1 and 2: the writer's throughput without and with replication, then the lag at 1,000/s. */
async function benchWriter(root: string, options: ReplicationBenchOptions): Promise<ReplicationFigure[]> {
  const runs = VARIANTS.map(() => [] as WriterRun[]);
  const replicatorCpu: number[] = [];
  const lockedMs: number[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    // Each round starts one variant later, so no variant always follows the same one.
    for (let k = 0; k < VARIANTS.length; k++) {
      const i = (k + round - 1) % VARIANTS.length;
      const variant = VARIANTS[i]!;
      const dir = path.join(root, `round-${round}-${i}`);
      await mkdir(dir);
      const dbPath = path.join(dir, 'app.db');
      // The table exists before the replicator starts, as in an application.
      await runWriter(dbPath, 0.2, 0);
      const write = () => runWriter(dbPath, options.seconds, 0, variant.autocheckpoint);
      const replicating = variant.replicator ? await withReplicator(dir, dbPath, write, variant.replicator) : undefined;
      const run = replicating?.result ?? (await write());
      runs[i]!.push(run);
      if (replicating) {
        replicatorCpu.push(replicating.cpuSecondsPerSecond);
        lockedMs.push(...replicating.lockedMs);
      }
      options.log(
        `round ${round}, ${variant.label}: ${rate(run).toFixed(0)} transactions/s, writer ${cpuPerTxn(run).toFixed(1)} µs CPU per transaction; ${timeSplit(run)}` +
          (replicating
            ? `; replicator ${replicating.cpuSecondsPerSecond.toFixed(2)} CPU s/s, ${replicating.segments} segments, write lock ${replicating.lockedMs.map((ms) => ms.toFixed(0)).join(', ') || 'never'} ms`
            : ''),
      );
      await rm(dir, { recursive: true, force: true });
    }
  }
  const figures: ReplicationFigure[] = [];
  for (const [i, variant] of VARIANTS.entries()) {
    const own = runs[i]!;
    let value = `${median(own.map(rate)).toFixed(0)} transactions/s; writer CPU per transaction ${median(own.map(cpuPerTxn)).toFixed(1)} µs`;
    const share = (field: 'cpuSeconds' | 'runQueueSeconds' | 'slowSeconds') => median(own.map((run) => run[field] / run.seconds)).toFixed(2);
    if (variant.baseline !== undefined) {
      const base = runs[variant.baseline]!;
      const paired = own.map((run, round) => 1 - rate(run) / rate(base[round]!));
      const cpuPaired = own.map((run, round) => cpuPerTxn(run) / cpuPerTxn(base[round]!) - 1);
      value +=
        `, ${median(cpuPaired) >= 0 ? '+' : ''}${pct(median(cpuPaired))} (rounds: ${cpuPaired.map(pct).join(', ')}); ` +
        `throughput overhead ${pct(median(paired))} (rounds: ${paired.map(pct).join(', ')})`;
    }
    value += `; of each second the writer ran ${share('cpuSeconds')} s, waited for a CPU ${share('runQueueSeconds')} s, spent ${share('slowSeconds')} s in commits of 2 ms or more`;
    figures.push({ figure: `${variant.label} (median of ${options.rounds})`, value });
  }
  figures.push({
    figure: 'replicator while the writer runs at full speed',
    value: `${median(replicatorCpu).toFixed(2)} CPU-seconds per second; write lock per WAL restart: median ${median(lockedMs).toFixed(1)} ms, max ${Math.max(0, ...lockedMs).toFixed(1)} ms (${lockedMs.length} restarts)`,
  });

  const dir = path.join(root, 'steady');
  await mkdir(dir);
  const dbPath = path.join(dir, 'app.db');
  await runWriter(dbPath, 0.2, 0);
  const steady = await withReplicator(dir, dbPath, () => runWriter(dbPath, 3 * options.seconds, 1000));
  // The first two seconds include the generation's snapshot; lag is read once the chain runs.
  const lags = steady.lags.slice(20);
  const line =
    `${(steady.result.committed / steady.result.seconds).toFixed(0)} transactions/s for ${steady.result.seconds.toFixed(0)} s: ` +
    `lag p50 ${median(lags).toFixed(2)} s, p99 ${percentile(lags, 0.99).toFixed(2)} s, max ${Math.max(...lags).toFixed(2)} s; ` +
    `${steady.segments} segments, ${(steady.segmentBytes / 1024 / 1024).toFixed(1)} MiB; replicator ${steady.cpuSecondsPerSecond.toFixed(2)} CPU s/s`;
  options.log(`steady ${line}`);
  figures.push({ figure: 'lag at a steady 1,000 transactions/s', value: line });
  return figures;
}

/** 3: the time to restore a database of `restoreMib` MiB whose generation holds `restoreSegments` segments. */
async function benchRestore(dir: string, options: ReplicationBenchOptions): Promise<ReplicationFigure[]> {
  await mkdir(dir);
  const dbPath = path.join(dir, 'app.db');
  const db = new Database(dbPath);
  db.pragma('journal_mode = wal');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB NOT NULL)');
  const rows = Math.ceil((options.restoreMib * 1024 * 1024) / 4096);
  const fill = db.prepare('WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) INSERT INTO t (b) SELECT randomblob(4000) FROM n');
  for (let done = 0; done < rows; done += 10_000) fill.run(Math.min(10_000, rows - done));
  db.pragma('wal_checkpoint(TRUNCATE)');
  const size = (await stat(dbPath)).size;

  const store = new ReplicaStore(new FsDriver({ root: path.join(dir, 'repo') }), 'bench');
  const replicator = new SqliteReplicator(dbPath, store, { stagingDir: dir });
  let shipping = performance.now();
  await replicator.sync();
  const update = db.prepare('UPDATE t SET b = randomblob(4000) WHERE id = ?');
  for (let i = 0; i < options.restoreSegments; i++) {
    update.run(1 + Math.floor(Math.random() * rows));
    await replicator.sync();
  }
  await replicator.close();
  shipping = (performance.now() - shipping) / 1000;
  const [generation] = await listGenerations(store);
  options.log(`restore: database ${(size / 1024 / 1024).toFixed(0)} MiB; ${generation!.segments} segments shipped in ${shipping.toFixed(1)} s`);

  const copied = path.join(dir, 'copy.db');
  let cp = performance.now();
  execFileSync('cp', [dbPath, copied]);
  cp = (performance.now() - cp) / 1000;
  await rm(copied);
  const target = path.join(dir, 'restored.db');
  const cpuBefore = process.cpuUsage();
  let restoring = performance.now();
  const result = await restoreReplica(store, {}, target);
  restoring = (performance.now() - restoring) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const same = rowsDigest(db) === rowsDigest(new Database(target, { readonly: true }), true);
  db.close();
  const line =
    `${restoring.toFixed(1)} s (${(size / 1024 / 1024 / restoring).toFixed(0)} MiB/s, ${((cpu.user + cpu.system) / 1e6).toFixed(1)} CPU-seconds; ${result.segments} segments applied, integrity_check included); ` +
    `rows identical to the source: ${same ? 'yes' : 'NO'}`;
  options.log(`restore of the newest state: ${line}`);
  return [
    {
      figure: `restore of a ${(size / 1024 / 1024).toFixed(0)} MiB database with ${generation!.segments} segments (${(generation!.segmentBytes / 1024 / 1024).toFixed(1)} MiB of segments) to its newest state`,
      value: line,
    },
    { figure: '`cp` of the same database (reference)', value: `${cp.toFixed(2)} s` },
    { figure: `shipping those ${options.restoreSegments} segments (one sync each)`, value: `${shipping.toFixed(1)} s` },
  ];
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
