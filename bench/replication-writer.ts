/**
 * The application side of `bench/replication.ts`: a separate process committing small
 * transactions into a WAL database for a fixed time, as fast as it can or at a steady rate.
 *
 *   node --import tsx bench/replication-writer.ts <db> <seconds> <transactions per second, 0 = as fast as possible> [autocheckpoint pages]
 *
 * Each transaction inserts one row (an integer and a 200-byte blob); `synchronous = NORMAL`, the
 * usual setting in WAL mode; SQLite's automatic checkpoint every 1,000 pages unless the fourth
 * argument says otherwise (0: the application leaves checkpoints to the replicator). Prints one JSON line: `{ committed, seconds, cpuSeconds, runQueueSeconds }`: the writer's own CPU time
 * (user + system), and the time it waited for a CPU (Linux schedstat; on a shared machine the
 * throughput follows that wait more than anything the replicator does).
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

const started = performance.now();
const cpuBefore = process.cpuUsage();
const endAt = started + seconds * 1000;
let committed = 0;
function tick(): void {
  const now = performance.now();
  if (now >= endAt) {
    db.close();
    const cpu = process.cpuUsage(cpuBefore);
    const [, waitNs] = readFileSync('/proc/self/schedstat', 'utf8').split(' ').map(Number);
    process.stdout.write(JSON.stringify({ committed, seconds: (now - started) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6, runQueueSeconds: waitNs! / 1e9 }) + '\n', () => process.exit(0));
    return;
  }
  // Paced: catch up to rate × elapsed; unpaced: a burst, then yield so signals and timers run.
  const due = rate > 0 ? Math.floor(((now - started) / 1000) * rate) : committed + 200;
  while (committed < due) commit.immediate(++committed);
  setTimeout(tick, rate > 0 ? 1 : 0);
}
tick();
