/**
 * A large SQLite database through the SQLite source and target, beside `sqlite3 db ".backup copy"`.
 *
 *   node --import tsx bench/sqlite.ts [--size-mib=2048] [--dir=<dir on the disk to measure>] [--keep]
 *
 * Generates a WAL-mode database of about `--size-mib` (rows of an indexed 16-character key and a
 * 900-byte blob, so both table and index b-trees are large), then measures, each on its own:
 * - the online backup alone (`backupDatabase`), `PRAGMA integrity_check` and `quick_check` of the copy;
 * - `sqlite3 <db> ".backup <copy>"` (the stock tool's online backup) and `cp` (the disk's pace);
 * - the whole round trip: source entries (backup + integrity_check) streamed into the target
 *   (write + fsync, integrity_check of the staged copy, rename), as a restore to a new path.
 * Peak RSS is the process's high-water mark (VmHWM, all threads) after the round trip, with the
 * database never read into memory. Everything is removed at the end unless --keep.
 */
import { manifestFor } from '../test/helpers/archive-fixtures.js';
import { nullNotices } from '../shared/kinds/notices.js';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import type { Manifest } from '../shared/formats/archive/manifest.js';
import { nullProgress } from '../shared/progress.js';
import type { EndpointContext } from '../shared/kinds/source.js';
import { createSqliteSource } from '../shared/kinds/sqlite/sqlite-source.js';
import { backupDatabase } from '../shared/kinds/sqlite/backup-database.js';
import { checkDatabaseIntegrity } from '../shared/kinds/sqlite/check-integrity.js';
import { createSqliteTarget } from '../shared/kinds/sqlite/sqlite-target.js';

const MiB = 1024 * 1024;
const { values: args } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '2048' },
    dir: { type: 'string', default: os.tmpdir() },
    keep: { type: 'boolean', default: false },
  },
});
const sizeMiB = Number(args['size-mib']);

async function timed<T>(label: string, bytes: number, fn: () => Promise<T> | T): Promise<T> {
  const started = process.hrtime.bigint();
  const result = await fn();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const rate = bytes > 0 ? `${(bytes / MiB / seconds).toFixed(0).padStart(6)} MiB/s` : '';
  console.log(`${label.padEnd(46)} ${seconds.toFixed(2).padStart(8)} s  ${rate}`);
  return result;
}

function generate(dbPath: string, targetBytes: number): void {
  const db = new Database(dbPath);
  try {
    db.pragma('journal_mode = wal');
    db.pragma('synchronous = off');
    db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, body BLOB NOT NULL)');
    const insert = db.prepare('INSERT INTO items (key, body) VALUES (hex(randomblob(8)), randomblob(900))');
    const batch = db.transaction((rows: number) => {
      for (let i = 0; i < rows; i++) insert.run();
    });
    // ~1,000 bytes of table and index per row; check the size as we go rather than trust the estimate.
    while ((db.pragma('page_count', { simple: true }) as number) * 4096 < targetBytes) batch(50_000);
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

function peakRssMiB(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(args.dir!, 'snapworker-bench-sqlite-'));
  const staging = path.join(work, 'staging');
  await mkdir(staging);
  const context: EndpointContext = { checkPath() {}, stagingDir: staging };
  const live = path.join(work, 'live.db');
  try {
    await timed(`generate ${sizeMiB} MiB database (WAL mode)`, 0, () => generate(live, sizeMiB * MiB));
    const size = (await stat(live)).size;
    console.log(`database: ${(size / MiB).toFixed(0)} MiB, ${os.cpus().length} CPUs, node ${process.version}\n`);

    // Generation leaves gigabytes of dirty pages; flush them so they do not slow whatever runs next.
    execFileSync('sync');
    const copy = path.join(work, 'copy.db');
    const fresh = async () => {
      await rm(copy);
      execFileSync('sync');
    };
    await timed('cp (disk reference)', size, () => execFileSync('cp', [live, copy]));
    await fresh();
    await timed('sqlite3 db ".backup copy"', size, () => execFileSync('sqlite3', [live, `.backup ${copy}`]));
    await fresh();
    await timed('online backup (backupDatabase)', size, () => backupDatabase(live, copy));
    await timed('PRAGMA integrity_check of the copy', size, () => checkDatabaseIntegrity(copy, 'integrity', 'bench'));
    await timed('PRAGMA quick_check of the copy', size, () => checkDatabaseIntegrity(copy, 'quick', 'bench'));
    await fresh();

    const source = createSqliteSource([new URL(`sqlite://${live}`)], {}, context);
    const restored = path.join(work, 'restored.db');
    const target = createSqliteTarget([new URL(`sqlite://${restored}`)], {}, context);
    const signal = new AbortController().signal;
    const manifest: Manifest = manifestFor(source);
    const phases: string[] = [];
    await timed('round trip: source -> target, both checks', size, async () => {
      let last = process.hrtime.bigint();
      const lap = (label: string) => {
        const now = process.hrtime.bigint();
        phases.push(`  ${label} ${(Number(now - last) / 1e9).toFixed(2)} s`);
        last = now;
      };
      const session = await target.begin(manifest, { signal, progress: nullProgress, replace: false });
      for await (const entry of source.entries({ signal, progress: nullProgress, notices: nullNotices })) {
        lap('source: backup + integrity_check');
        const { open, ...header } = entry;
        await session.write(header, await open!());
        lap('target: stream into temp file + fsync');
      }
      await session.commit();
      lap('target: integrity_check + rename + fsync dir');
    });
    console.log(phases.join('\n'));
    console.log(`\npeak RSS of this process (VmHWM): ${peakRssMiB().toFixed(0)} MiB`);
    console.log(`restored database, sqlite3 CLI quick_check: ${execFileSync('sqlite3', [restored, 'PRAGMA quick_check'], { encoding: 'utf8' }).trim()}`);
  } finally {
    if (args.keep) console.log(`kept ${work}`);
    else await rm(work, { recursive: true, force: true });
  }
}

await main();
