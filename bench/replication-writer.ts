/**
 * The application side of `bench/replication.ts`: a separate process committing small
 * transactions into a WAL database for a fixed time, as fast as it can or at a steady rate.
 *
 *   node --import tsx bench/replication-writer.ts <db> <seconds> <transactions per second, 0 = as fast as possible> [autocheckpoint pages]
 *
 * Each transaction inserts one row (an integer and a 200-byte blob); `synchronous = NORMAL`, the
 * usual setting in WAL mode; SQLite's automatic checkpoint every 1,000 pages unless the fourth
 * argument says otherwise (0: the application leaves checkpoints to the replicator). Prints one JSON line:
 * `{ committed, seconds, cpuSeconds, runQueueSeconds, slowCommits, slowSeconds }`: the writer's own
 * CPU time (user + system), the time it waited for a CPU while writing (Linux schedstat; on a
 * shared machine the throughput follows that wait more than anything the replicator does), and
 * the commits that took 2 ms or more with their total time (waits for a lock or for the
 * application's own checkpoint, which fsyncs). What is left of the wall time is other blocking.
 */
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';

const [dbPath, secondsText, rateText, autocheckpoint = '1000'] = process.argv.slice(2);
const seconds = Number(secondsText);
const rate = Number(rateText);
if (!dbPath || !(seconds > 0) || !(rate >= 0)) {
  process.stderr.write('usage: replication-writer.ts <db> <seconds> <rate>\n');
  process.exit(2);
}
const db = new Database(dbPath, { timeout: 30_000 });
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma(`wal_autocheckpoint = ${Number(autocheckpoint)}`);
db.exec('CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, body BLOB NOT NULL)');
const insert = db.prepare('INSERT INTO events (n, body) VALUES (?, randomblob(200))');
const commit = db.transaction((n: number) => insert.run(n));

/** Time this process has waited for a CPU so far, seconds (Linux schedstat: run time, wait time, slices). */
const runQueueSeconds = () => Number(readFileSync('/proc/self/schedstat', 'utf8').split(' ')[1]) / 1e9;

const started = performance.now();
const cpuBefore = process.cpuUsage();
const waitBefore = runQueueSeconds();
// Commits that took 2 ms or more: where the writer waited for a lock (SQLite's busy handler
// sleeps) or for its own checkpoint's fsyncs, rather than for a CPU.
let slowCommits = 0;
let slowSeconds = 0;
const endAt = started + seconds * 1000;
let committed = 0;
function tick(): void {
  const now = performance.now();
  if (now >= endAt) {
    db.close();
    const cpu = process.cpuUsage(cpuBefore);
    const result = { committed, seconds: (now - started) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6, runQueueSeconds: runQueueSeconds() - waitBefore, slowCommits, slowSeconds };
    process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
    return;
  }
  // Paced: catch up to rate × elapsed; unpaced: a burst, then yield so signals and timers run.
  const due = rate > 0 ? Math.floor(((now - started) / 1000) * rate) : committed + 200;
  while (committed < due) {
    const at = performance.now();
    commit.immediate(++committed);
    const took = performance.now() - at;
    if (took >= 2) {
      slowCommits += 1;
      slowSeconds += took / 1000;
    }
  }
  setTimeout(tick, rate > 0 ? 1 : 0);
}
tick();
