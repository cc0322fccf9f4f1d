/**
 * Snapshots of databases the worker may not write next to: a read-only mount (what a worker
 * that mounts the application's volume read-only sees), a hot journal left by a killed writer,
 * WAL databases without their side files. The read-only view is a read-only bind mount, since
 * root (which these tests run as) ignores permission bits; without the rights to mount, those
 * cases are skipped with a reason.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { nullNotices } from '../shared/kinds/notices.js';
import { nullProgress } from '../shared/progress.js';
import type { EndpointContext } from '../shared/kinds/source.js';
import { createSqliteSource } from '../shared/kinds/sqlite/sqlite-source.js';
import { inspectLiveFiles } from '../shared/kinds/sqlite/live-files.js';
import { copyAtRest, FilesChangedError } from '../shared/kinds/sqlite/resting-copy.js';

const BETTER_SQLITE3 = createRequire(import.meta.url).resolve('better-sqlite3');
const WRITER_SCRIPT = fileURLToPath(new URL('./helpers/sqlite-writer.ts', import.meta.url));

let root: string;
let context: EndpointContext;
const mounts: string[] = [];

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-sqlite-ro-'));
  await chmod(root, 0o755); // for the cases run as another user
  context = { checkPath: () => {}, stagingDir: path.join(root, 'staging') };
  await mkdir(context.stagingDir);
});

after(async () => {
  // Lazy: SQLite may keep a descriptor of a file it locked until the process exits.
  for (const mount of mounts) spawnSync('umount', ['-l', mount]);
  await rm(root, { recursive: true, force: true });
});

/** A read-only view of `dir` (a read-only bind mount), or undefined when this process may not mount. */
function readOnlyView(dir: string): string | undefined {
  const view = `${dir}-ro`;
  execFileSync('mkdir', ['-p', view]);
  const bound = spawnSync('mount', ['--bind', dir, view]);
  if (bound.status !== 0) return undefined;
  mounts.push(view);
  if (spawnSync('mount', ['-o', 'remount,bind,ro', view]).status !== 0) return undefined;
  return view;
}

const CANNOT_MOUNT = (() => {
  if (process.getuid?.() !== 0) return 'needs root to make a read-only bind mount';
  return spawnSync('mount', ['--version']).status === 0 ? false : 'mount(8) is not installed';
})();

let caseCounter = 0;
async function freshDir(): Promise<string> {
  const dir = path.join(root, `case-${++caseCounter}`);
  await mkdir(dir);
  return dir;
}

/** Snapshots the database through the sqlite source; returns the archived copy as a file. */
async function snapshotToFile(dbPath: string): Promise<string> {
  const source = createSqliteSource([new URL(`sqlite://${dbPath}`)], {}, context);
  const out = path.join(root, `copy-${++caseCounter}.db`);
  const signal = new AbortController().signal;
  for await (const entry of source.entries({ signal, progress: nullProgress, notices: nullNotices })) {
    const chunks: Buffer[] = [];
    for await (const chunk of await entry.open!()) chunks.push(chunk as Buffer);
    await writeFile(out, Buffer.concat(chunks));
  }
  assert.deepEqual(await readdir(context.stagingDir), [], 'staging is empty afterwards');
  return out;
}

function query(dbPath: string, sql: string): unknown {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare(sql).get();
  } finally {
    db.close();
  }
}

async function digestOf(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

function makeDatabase(dbPath: string, journalMode: 'wal' | 'delete', rows: number): void {
  const db = new Database(dbPath);
  db.pragma(`journal_mode = ${journalMode}`);
  db.exec('CREATE TABLE t (x INTEGER NOT NULL, pad BLOB NOT NULL)');
  const insert = db.prepare('INSERT INTO t VALUES (?, randomblob(1000))');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run(i);
  })();
  db.close();
}

/**
 * Runs `sql` in a child process that is SIGKILLed right after it, as a writer killed by the OOM
 * killer or a node drain. With `openTransaction` the SQL runs inside BEGIN IMMEDIATE and a 5-page
 * cache, so changed pages spill into the database file before the kill: a hot journal is left.
 */
function killWriterAfter(dbPath: string, sql: string, { openTransaction, walAutocheckpoint = true }: { openTransaction: boolean; walAutocheckpoint?: boolean }): void {
  const script = `
    const Database = require(${JSON.stringify(BETTER_SQLITE3)});
    const db = new Database(${JSON.stringify(dbPath)});
    db.pragma('cache_size = 5');
    ${walAutocheckpoint ? '' : "db.pragma('wal_autocheckpoint = 0');"}
    ${openTransaction ? "db.exec('BEGIN IMMEDIATE');" : ''}
    db.exec(${JSON.stringify(sql)});
    process.kill(process.pid, 'SIGKILL');`;
  const child = spawnSync(process.execPath, ['-e', script]);
  assert.equal(child.signal, 'SIGKILL', child.stderr.toString());
}

const CHILD_SCRIPT = fileURLToPath(new URL('./helpers/sqlite-snapshot-child.ts', import.meta.url));
const NOBODY = 65534;
const CANNOT_SWITCH_USER = (() => {
  if (process.getuid?.() !== 0) return 'needs root to run a snapshot as another user';
  return spawnSync('setpriv', ['--version']).status === 0 ? false : 'setpriv(1) is not installed';
})();

/** Snapshots `dbPath` in a child process running as user and group `nobody`, as a worker that does not own the files. */
async function snapshotAsNobody(dbPath: string): Promise<{ output: string; copy: string }> {
  const staging = await mkdtemp(path.join(root, 'nobody-'));
  await chmod(staging, 0o777);
  const copy = path.join(staging, 'copy.db');
  const child = spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '--import', 'tsx', CHILD_SCRIPT, dbPath, staging, copy], { encoding: 'utf8' });
  return { output: `${child.stdout}${child.stderr}`.trim(), copy };
}

describe('sqlite snapshots write nothing next to the live database', () => {
  it('leaves no -wal or -shm beside a closed WAL database in a writable folder', async () => {
    const dir = await freshDir();
    const db = path.join(dir, 'app.db');
    makeDatabase(db, 'wal', 300);
    const copy = await snapshotToFile(db);
    assert.deepEqual(await readdir(dir), ['app.db'], 'the folder holds exactly what it held before');
    assert.deepEqual(query(copy, 'SELECT count(*) AS n FROM t'), { n: 300 });
    assert.deepEqual(query(copy, 'PRAGMA journal_mode'), { journal_mode: 'wal' }, 'a WAL database stays a WAL database');
  });

  it('snapshots a closed WAL database on a read-only mount', { skip: CANNOT_MOUNT }, async () => {
    const dir = await freshDir();
    makeDatabase(path.join(dir, 'app.db'), 'wal', 300);
    const view = readOnlyView(dir);
    assert.ok(view, 'read-only bind mount');
    const copy = await snapshotToFile(path.join(view, 'app.db'));
    assert.deepEqual(query(copy, 'SELECT count(*) AS n FROM t'), { n: 300 });
    assert.deepEqual(await readdir(dir), ['app.db']);
  });

  it('keeps the commits still in the WAL of a killed writer whose -shm is gone, on a read-only mount', { skip: CANNOT_MOUNT }, async () => {
    const dir = await freshDir();
    const db = path.join(dir, 'app.db');
    makeDatabase(db, 'wal', 10);
    killWriterAfter(db, 'INSERT INTO t SELECT x + 100, pad FROM t', { openTransaction: false, walAutocheckpoint: false });
    await rm(`${db}-shm`);
    const view = readOnlyView(dir);
    assert.ok(view, 'read-only bind mount');
    const copy = await snapshotToFile(path.join(view, 'app.db'));
    assert.deepEqual(query(copy, 'SELECT count(*) AS n, max(x) AS top FROM t'), { n: 20, top: 109 }, 'the committed transaction in the WAL is in the snapshot');
    assert.deepEqual(await readdir(dir), ['app.db', 'app.db-wal']);
  });

  for (const where of ['a writable folder', 'a read-only mount'] as const) {
    it(`snapshots the last committed state of a database whose writer was killed mid-transaction (hot journal), in ${where}`, { skip: where === 'a read-only mount' && CANNOT_MOUNT }, async () => {
      const dir = await freshDir();
      const db = path.join(dir, 'app.db');
      makeDatabase(db, 'delete', 500);
      killWriterAfter(db, 'UPDATE t SET x = x + 100000', { openTransaction: true });
      assert.deepEqual((await readdir(dir)).sort(), ['app.db', 'app.db-journal'], 'a hot journal is left');
      const digests = [await digestOf(db), await digestOf(`${db}-journal`)];
      const readFrom = where === 'a writable folder' ? dir : readOnlyView(dir);
      assert.ok(readFrom, 'read-only bind mount');

      const copy = await snapshotToFile(path.join(readFrom, 'app.db'));
      assert.deepEqual(query(copy, 'SELECT count(*) AS n, min(x) AS low, max(x) AS top FROM t'), { n: 500, low: 0, top: 499 }, 'the killed transaction is rolled back in the copy');
      assert.deepEqual(query(copy, 'PRAGMA integrity_check'), { integrity_check: 'ok' });
      assert.deepEqual([await digestOf(db), await digestOf(`${db}-journal`)], digests, 'the live database and its journal are untouched');
    });
  }

  it('snapshots, as a user who may not write the folder, a closed WAL database and a hot journal, creating nothing there', { skip: CANNOT_SWITCH_USER }, async () => {
    const dir = await freshDir();
    await chmod(dir, 0o755);
    makeDatabase(path.join(dir, 'wal.db'), 'wal', 50);
    makeDatabase(path.join(dir, 'journal.db'), 'delete', 300);
    killWriterAfter(path.join(dir, 'journal.db'), 'UPDATE t SET x = x + 100000', { openTransaction: true });
    const before = (await readdir(dir)).sort();

    const wal = await snapshotAsNobody(path.join(dir, 'wal.db'));
    assert.equal(wal.output, 'ok');
    assert.deepEqual(query(wal.copy, 'SELECT count(*) AS n FROM t'), { n: 50 });
    const journal = await snapshotAsNobody(path.join(dir, 'journal.db'));
    assert.equal(journal.output, 'ok');
    assert.deepEqual(query(journal.copy, 'SELECT count(*) AS n, max(x) AS top FROM t'), { n: 300, top: 299 });
    assert.deepEqual((await readdir(dir)).sort(), before, 'nothing was created or removed beside the databases');
  });

  it('fails at once, not retryable, with one line saying what to grant, when the worker may not read the database', { skip: CANNOT_SWITCH_USER }, async () => {
    const dir = await freshDir();
    await chmod(dir, 0o755);
    const db = path.join(dir, 'secret.db');
    makeDatabase(db, 'wal', 5);
    await chmod(db, 0o600);
    const { output } = await snapshotAsNobody(db);
    assert.equal(output, `error retryable=false sqlite source ${db}: cannot read ${db}: permission denied; give the worker read access to the database, its -wal, -shm and -journal files and their folder`);
  });

  it('refuses a copy at rest when a process wrote to the database while it was copied', async () => {
    const dir = await freshDir();
    const db = path.join(dir, 'app.db');
    makeDatabase(db, 'delete', 10);
    const before = await inspectLiveFiles(db);
    const writer = new Database(db);
    writer.exec('INSERT INTO t VALUES (99, x\'00\')');
    writer.close();
    const dest = path.join(context.stagingDir, 'changed.db');
    await assert.rejects(copyAtRest(db, dest, before, `sqlite source ${db}`), (err: Error) => err instanceof FilesChangedError && /changed while they were copied/.test(err.message));
    await rm(dest, { force: true });
  });

  it('reads a WAL database through a read-only mount while a writer keeps committing through a writable path', { skip: CANNOT_MOUNT }, async () => {
    const dir = await freshDir();
    const db = path.join(dir, 'live.db');
    const writer = await startWriter(db);
    try {
      const view = readOnlyView(dir);
      assert.ok(view, 'read-only bind mount');
      const copy = await snapshotToFile(path.join(view, 'live.db'));
      const torn = query(copy, 'SELECT count(*) AS n FROM (SELECT txn FROM rows GROUP BY txn HAVING count(*) <> max(n))') as { n: number };
      assert.equal(torn.n, 0, 'only whole transactions');
      assert.ok((query(copy, 'SELECT count(DISTINCT txn) AS n FROM rows') as { n: number }).n >= 20);
    } finally {
      writer.kill('SIGTERM');
      await once(writer, 'exit');
    }
  });
});

async function startWriter(dbPath: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER_SCRIPT, dbPath, 'wal'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  assert.equal(line.toString().trim(), 'ready');
  return child;
}
