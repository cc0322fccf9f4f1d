/**
 * A separate process that writes to an SQLite database until it is told to stop, so tests can
 * snapshot a database under real concurrent writes.
 *
 *   node --import tsx test/helpers/sqlite-writer.ts <db path> <wal|delete> [timed]
 *
 * Each transaction inserts 3 to 9 rows into `rows(txn, seq, n, payload)`, all carrying the same
 * transaction id `txn` (1, 2, 3, ... in commit order) and the row count `n`, so a reader can tell
 * a whole transaction (n rows with seq 0..n-1) from a torn one. Commits about every millisecond,
 * like a busy service (a back-to-back loop would starve every reader of a rollback-journal
 * database, the snapshot included; see docs/sqlite.md). Prints `ready` once 20 transactions are
 * committed, and on SIGTERM prints `committed <count>` and exits. With `timed`, each transaction
 * also inserts `commits(txn, at_ms)`, the wall-clock time just before its commit, so a test can
 * tell which transactions a point-in-time restore must hold.
 *
 * With `SNAPWORKER_TEST_REPLICATE_TO=<repository dir>` (and `SNAPWORKER_TEST_STAGING=<dir>`,
 * `SNAPWORKER_TEST_INTERVAL_MS`, default 1000), the same process also runs a `SqliteReplicator`
 * into that file repository (replica `app`): an application that replicates in-process, so one
 * SIGKILL ends the writer and its replicator together.
 */
import Database from 'better-sqlite3';
import { FsDriver } from '../../shared/storage/fs/fs-driver.js';
import { ReplicaStore } from '../../shared/kinds/sqlite/replication/replica-store.js';
import { SqliteReplicator } from '../../shared/kinds/sqlite/replication/replicator.js';

const [dbPath, journalMode, timing] = process.argv.slice(2);
if (!dbPath || (journalMode !== 'wal' && journalMode !== 'delete') || (timing !== undefined && timing !== 'timed')) {
  process.stderr.write('usage: sqlite-writer.ts <db path> <wal|delete> [timed]\n');
  process.exit(2);
}

// A long busy timeout: in rollback-journal mode a commit waits for a running snapshot to finish.
const db = new Database(dbPath, { timeout: 30_000 });
db.pragma(`journal_mode = ${journalMode}`);
// No fsync per commit: this process tests consistency under concurrency, not durability, and an
// fsync-bound commit would hold the lock for the whole fsync.
db.pragma('synchronous = OFF');
db.exec(`CREATE TABLE IF NOT EXISTS rows (
  id INTEGER PRIMARY KEY, txn INTEGER NOT NULL, seq INTEGER NOT NULL, n INTEGER NOT NULL, payload BLOB NOT NULL);
  CREATE INDEX IF NOT EXISTS rows_txn ON rows (txn)`);
if (timing) db.exec('CREATE TABLE IF NOT EXISTS commits (txn INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL)');
const recordTime = timing ? db.prepare('INSERT INTO commits (txn, at_ms) VALUES (?, ?)') : undefined;
const insert = db.prepare('INSERT INTO rows (txn, seq, n, payload) VALUES (?, ?, ?, randomblob(?))');
let committed = (db.prepare('SELECT coalesce(max(txn), 0) AS last FROM rows').get() as { last: number }).last;
const writeTransaction = db.transaction((txn: number, rows: number) => {
  for (let seq = 0; seq < rows; seq++) insert.run(txn, seq, rows, 200 + ((txn * 7 + seq) % 300));
  recordTime?.run(txn, Date.now());
});

const replicateTo = process.env.SNAPWORKER_TEST_REPLICATE_TO;
if (replicateTo) {
  const replicator = new SqliteReplicator(dbPath, new ReplicaStore(new FsDriver({ root: replicateTo }), 'app'), {
    stagingDir: process.env.SNAPWORKER_TEST_STAGING ?? replicateTo,
    intervalMs: Number(process.env.SNAPWORKER_TEST_INTERVAL_MS ?? 1000),
    onEvent: (event) => {
      if (event.type === 'error') process.stderr.write(`replicator: ${event.message}\n`);
    },
  });
  void replicator.run(new AbortController().signal).catch((err: Error) => {
    process.stderr.write(`replicator failed: ${err.message}\n`);
    process.exit(1);
  });
}

let announced = false;
let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
});

function writeOne(): void {
  if (stopping) {
    db.close();
    process.stdout.write(`committed ${committed}\n`, () => process.exit(0));
    return;
  }
  writeTransaction.immediate(committed + 1, 3 + (committed % 7));
  committed++;
  if (!announced && committed >= 20) {
    announced = true;
    process.stdout.write('ready\n');
  }
  setTimeout(writeOne, 1);
}
writeOne();
