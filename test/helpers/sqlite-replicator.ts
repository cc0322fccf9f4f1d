/**
 * A separate process that replicates one SQLite database into a file repository until it is
 * killed, so tests can SIGKILL a replicator mid-run and start another.
 *
 *   node --import tsx test/helpers/sqlite-replicator.ts <db path> <repository dir> <staging dir> <interval ms>
 *
 * Prints one JSON line per event (`generation`, `resumed`, `segment`, ...); on SIGTERM stops
 * cleanly (ships what is committed) and exits 0.
 */
import { FsDriver } from '../../shared/storage/fs/fs-driver.js';
import { ReplicaStore } from '../../shared/kinds/sqlite/replication/replica-store.js';
import { SqliteReplicator } from '../../shared/kinds/sqlite/replication/replicator.js';

const [dbPath, repoDir, stagingDir, interval] = process.argv.slice(2);
if (!dbPath || !repoDir || !stagingDir || !interval) {
  process.stderr.write('usage: sqlite-replicator.ts <db path> <repository dir> <staging dir> <interval ms>\n');
  process.exit(2);
}
const controller = new AbortController();
process.on('SIGTERM', () => controller.abort());
const replicator = new SqliteReplicator(dbPath, new ReplicaStore(new FsDriver({ root: repoDir }), 'app'), {
  stagingDir,
  intervalMs: Number(interval),
  checkpointBytes: 64 * 1024,
  restartBytes: 256 * 1024,
  onEvent: (event) => process.stdout.write(JSON.stringify(event) + '\n'),
});
replicator.run(controller.signal).then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`replicator failed: ${err.message}\n`);
    process.exit(1);
  },
);
