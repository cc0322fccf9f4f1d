import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { nullNotices } from '../shared/kinds/notices.js';
import { manifestFor } from './helpers/archive-fixtures.js';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { AbortedError, IntegrityError, InvalidInputError, NotFoundError, SnapworkerError } from '../shared/errors.js';
import { nullProgress } from '../shared/progress.js';
import type { EndpointContext, Source } from '../shared/kinds/source.js';
import { createSqliteSource, sqliteSourceFactory, type SqliteDatabaseDetails } from '../shared/kinds/sqlite/sqlite-source.js';
import type { RestoreResult } from '../shared/kinds/restore-target.js';
import { createSqliteTarget } from '../shared/kinds/sqlite/sqlite-target.js';

const WRITER_SCRIPT = fileURLToPath(new URL('./helpers/sqlite-writer.ts', import.meta.url));
const HAVE_SQLITE3_CLI = (() => {
  try {
    execFileSync('sqlite3', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

let root: string;
let context: EndpointContext;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'snapworker-sqlite-'));
  context = {
    checkPath: (absPath) => assert.ok(absPath.startsWith(root + path.sep), `test paths stay in ${root}`),
    stagingDir: path.join(root, 'staging'),
  };
  await mkdir(context.stagingDir);
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

let dirCounter = 0;
async function freshDir(): Promise<string> {
  const dir = path.join(root, `case-${++dirCounter}`);
  await mkdir(dir);
  return dir;
}

function sqliteUri(filePath: string): URL {
  return new URL(`sqlite://${filePath}`);
}


/** Feeds every entry of `source` straight into a session of the target at `targets`, then commits. */
async function snapshotAndRestore(
  source: Source,
  targets: string[],
  { replace = false, mangle }: { replace?: boolean; mangle?: (bytes: Buffer) => Buffer } = {},
): Promise<RestoreResult> {
  const signal = new AbortController().signal;
  const target = createSqliteTarget(targets.map(sqliteUri), {}, context);
  const session = await target.begin(manifestFor(source), { signal, progress: nullProgress, replace });
  try {
    for await (const entry of source.entries({ signal, progress: nullProgress, notices: nullNotices })) {
      const { open: openBody, ...header } = entry;
      let body = await openBody!();
      if (mangle) body = Readable.from([mangle(await readAll(body))]);
      await session.write(header, body);
    }
  } catch (err) {
    await session.abort();
    throw err;
  }
  return session.commit();
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Runs SQL with the sqlite3 command-line tool (better-sqlite3 when the tool is missing). */
function sqlite3(dbPath: string, sql: string): string {
  if (HAVE_SQLITE3_CLI) return execFileSync('sqlite3', [dbPath, sql], { encoding: 'utf8' }).trim();
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare(sql).raw().all().map((row) => (row as unknown[]).join('|')).join('\n');
  } finally {
    db.close();
  }
}

/** A database of `rows` rows of ~1 KiB, in the given journal mode. */
function makeDatabase(dbPath: string, rows: number, journalMode: 'wal' | 'delete' = 'wal', tag = 'v1'): void {
  const db = new Database(dbPath);
  try {
    db.pragma(`journal_mode = ${journalMode}`);
    db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, tag TEXT NOT NULL, body BLOB NOT NULL)');
    const insert = db.prepare('INSERT INTO items (tag, body) VALUES (?, randomblob(1000))');
    db.transaction(() => {
      for (let i = 0; i < rows; i++) insert.run(tag);
    })();
  } finally {
    db.close();
  }
}

function tagsOf(dbPath: string): string {
  return sqlite3(dbPath, 'SELECT tag, count(*) FROM items GROUP BY tag');
}

async function assertStagingEmpty(): Promise<void> {
  assert.deepEqual(await readdir(context.stagingDir), [], 'no staged copies are left behind');
}

function assertNoTempFiles(dir: string): void {
  assert.deepEqual(readdirSync(dir).filter((name) => name.includes('snapworker')), [], `no temp files left in ${dir}`);
}

async function startWriter(dbPath: string, journalMode: 'wal' | 'delete'): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER_SCRIPT, dbPath, journalMode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  assert.equal(line.toString().trim(), 'ready');
  return child;
}

/** Resolves once the live database at `dbPath` holds more than `pages` pages (20 s at most). */
async function waitForPages(dbPath: string, pages: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const db = new Database(dbPath, { readonly: true, timeout: 1000 });
    let count: number;
    try {
      count = db.pragma('page_count', { simple: true }) as number;
    } finally {
      db.close();
    }
    if (count > pages) return;
    assert.ok(Date.now() < deadline, `the writer reached only ${count} pages`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stopWriter(child: ChildProcess): Promise<number> {
  const output = readAll(child.stdout!);
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
  return Number(/committed (\d+)/.exec((await output).toString())?.[1]);
}

describe('sqlite source and target', () => {
  for (const journalMode of ['wal', 'delete'] as const) {
    it(`snapshots a ${journalMode}-mode database while another process keeps committing, and restores whole transactions only`, async () => {
      const dir = await freshDir();
      const live = path.join(dir, 'live.db');
      const restored = path.join(dir, 'restored.db');
      const writer = await startWriter(live, journalMode);
      let committedByWriter: number;
      try {
        // Enough pages for many backup steps; waited for, not timed, since a loaded machine slows the writer.
        await waitForPages(live, 16 * 5);
        // Small steps, so the copy spans many steps while the writer commits between them.
        const source = sqliteSourceFactory({ pagesPerStep: 16 })([sqliteUri(live)], {}, context);
        await snapshotAndRestore(source, [restored]);
        const [details] = source.descriptor.details!['databases'] as SqliteDatabaseDetails[];
        assert.equal(details!.journalMode, journalMode);
        assert.equal(details!.integrity, 'ok');
        assert.equal(details!.sizeBytes, details!.pageCount! * details!.pageSize!);
        assert.ok(details!.pageCount! > 16 * 4, 'the copy took several steps');
      } finally {
        committedByWriter = await stopWriter(writer);
      }
      assert.equal(sqlite3(restored, 'PRAGMA integrity_check'), 'ok');
      const torn = sqlite3(
        restored,
        'SELECT count(*) FROM (SELECT txn FROM rows GROUP BY txn HAVING count(*) != max(n) OR min(seq) != 0 OR max(seq) != max(n) - 1)',
      );
      assert.equal(torn, '0', 'every transaction in the copy has all its rows');
      const [distinct, last] = sqlite3(restored, 'SELECT count(DISTINCT txn), max(txn) FROM rows').split('|').map(Number);
      assert.equal(distinct, last, 'the copy holds a gapless prefix of the commits');
      assert.ok(last! >= 20 && last! < committedByWriter, `a snapshot mid-stream (${last} of ${committedByWriter} transactions)`);
      assert.equal(sqlite3(restored, 'PRAGMA journal_mode'), journalMode, 'the journal mode survives the round trip');
      await assertStagingEmpty();
      assertNoTempFiles(dir);
    });
  }

  it('snapshots several databases in one job, names duplicate basenames apart, and deletes each staged copy once read', async () => {
    const dir = await freshDir();
    const paths = [path.join(dir, 'a', 'app.db'), path.join(dir, 'b', 'app.db'), path.join(dir, 'c', 'other.sqlite')];
    for (const [i, dbPath] of paths.entries()) {
      await mkdir(path.dirname(dbPath));
      makeDatabase(dbPath, 50 * (i + 1), i === 1 ? 'delete' : 'wal', `db${i}`);
    }
    const source = createSqliteSource(paths.map(sqliteUri), {}, context);
    assert.equal(source.descriptor.name, 'app');
    assert.equal(source.descriptor.kind, 'sqlite');

    const signal = new AbortController().signal;
    const seen: string[] = [];
    let index = 0;
    for await (const entry of source.entries({ signal, progress: nullProgress, notices: nullNotices })) {
      seen.push(entry.path);
      const [workDir] = await readdir(context.stagingDir);
      assert.equal((await readdir(path.join(context.stagingDir, workDir!))).length, 3 - index, 'copies already read are deleted');
      await readAll(await entry.open!());
      index++;
    }
    assert.deepEqual(seen, ['databases/app.db', 'databases/app-2.db', 'databases/other.sqlite']);
    await assertStagingEmpty();

    const targets = ['one.db', 'two.db', 'three.db'].map((name) => path.join(dir, name));
    const result = await snapshotAndRestore(source, targets);
    assert.equal(result.entries, 3);
    for (const [i, target] of targets.entries()) assert.equal(tagsOf(target), `db${i}|${50 * (i + 1)}`);
    const details = source.descriptor.details!['databases'] as SqliteDatabaseDetails[];
    assert.deepEqual(details.map((d) => [d.name, d.path, d.integrity]), [
      ['app.db', paths[0], 'ok'],
      ['app-2.db', paths[1], 'ok'],
      ['other.sqlite', paths[2], 'ok'],
    ]);
  });

  it('refuses a restore whose target URIs do not map one to one onto the archived databases', async () => {
    const dir = await freshDir();
    const paths = ['x.db', 'y.db'].map((name) => path.join(dir, name));
    for (const dbPath of paths) makeDatabase(dbPath, 5);
    const source = createSqliteSource(paths.map(sqliteUri), { name: 'pair' }, context);
    assert.equal(source.descriptor.name, 'pair');
    const target = createSqliteTarget([sqliteUri(path.join(dir, 'only.db'))], {}, context);
    await assert.rejects(
      target.begin(manifestFor(source), { signal: new AbortController().signal, progress: nullProgress, replace: false }),
      (err: Error) => err instanceof InvalidInputError && /2 database\(s\) \(x\.db, y\.db\) but 1 target URI/.test(err.message),
    );
  });

  it('refuses to overwrite an existing database without replace, and replaces it whole with replace', async () => {
    const dir = await freshDir();
    const fresh = path.join(dir, 'fresh.db');
    const existing = path.join(dir, 'existing.db');
    makeDatabase(fresh, 40, 'wal', 'new');
    makeDatabase(existing, 10, 'wal', 'old');
    // Side files an old, crashed or still-running process left behind.
    await writeFile(existing + '-wal', 'stale wal');
    await writeFile(existing + '-shm', 'stale shm');
    const source = () => createSqliteSource([sqliteUri(fresh)], {}, context);

    await assert.rejects(snapshotAndRestore(source(), [existing]), (err: Error) => err instanceof InvalidInputError && /replace/.test(err.message));
    assert.equal(readFileSync(existing + '-wal', 'utf8'), 'stale wal');

    const result = await snapshotAndRestore(source(), [existing], { replace: true });
    assert.equal(result.entries, 1);
    assert.equal(existsSync(existing + '-wal'), false, 'the stale WAL is gone');
    assert.equal(existsSync(existing + '-shm'), false, 'the stale shared-memory file is gone');
    assert.equal(tagsOf(existing), 'new|40');
    assert.equal(sqlite3(existing, 'PRAGMA integrity_check'), 'ok');
    assertNoTempFiles(dir);
  });

  it('leaves the old database intact when the staged copy fails its integrity check', async () => {
    const dir = await freshDir();
    const fresh = path.join(dir, 'fresh.db');
    const existing = path.join(dir, 'existing.db');
    makeDatabase(fresh, 200, 'delete', 'new');
    makeDatabase(existing, 10, 'delete', 'old');
    const before = readFileSync(existing);
    const source = createSqliteSource([sqliteUri(fresh)], {}, context);
    // Garbage over a table page in the middle: the header stays valid, the b-tree does not.
    const mangle = (bytes: Buffer) => {
      bytes.fill(0x5a, 20 * 4096, 21 * 4096);
      return bytes;
    };
    await assert.rejects(snapshotAndRestore(source, [existing], { replace: true, mangle }), (err: Error) => {
      assert.ok(err instanceof IntegrityError, `IntegrityError, got ${err.name}: ${err.message}`);
      assert.match(err.message, /existing\.db: restored copy: integrity_check/);
      return true;
    });
    assert.deepEqual(readFileSync(existing), before, 'the old database is byte for byte unchanged');
    assert.equal(tagsOf(existing), 'old|10');
    assertNoTempFiles(dir);
  });

  it('fails clearly on a file that is not an SQLite database, on a corrupt database and on a missing one', async () => {
    const dir = await freshDir();
    const text = path.join(dir, 'notes.db');
    await writeFile(text, 'these are notes, not a database\n'.repeat(200));
    await assert.rejects(snapshotAndRestore(createSqliteSource([sqliteUri(text)], {}, context), [path.join(dir, 'r1.db')]), (err: Error) => {
      assert.ok(err instanceof InvalidInputError, `InvalidInputError, got ${err.name}: ${err.message}`);
      assert.equal(err.message, `sqlite source ${text}: not an SQLite database`);
      return true;
    });

    const corrupt = path.join(dir, 'corrupt.db');
    makeDatabase(corrupt, 200, 'delete');
    const handle = await open(corrupt, 'r+');
    await handle.write(Buffer.alloc(4096, 0x5a), 0, 4096, 30 * 4096);
    await handle.close();
    await assert.rejects(snapshotAndRestore(createSqliteSource([sqliteUri(corrupt)], {}, context), [path.join(dir, 'r2.db')]), (err: Error) => {
      assert.ok(err instanceof IntegrityError, `IntegrityError, got ${err.name}: ${err.message}`);
      assert.match(err.message, new RegExp(`^sqlite source ${corrupt}: copy: integrity_check`));
      return true;
    });

    const missing = path.join(dir, 'missing.db');
    await assert.rejects(snapshotAndRestore(createSqliteSource([sqliteUri(missing)], {}, context), [path.join(dir, 'r3.db')]), NotFoundError);
    await assertStagingEmpty();
    assertNoTempFiles(dir);
  });

  it('retries a database locked by another connection, succeeds once the lock is released, and fails clearly if it never is', async () => {
    const dir = await freshDir();
    const dbPath = path.join(dir, 'locked.db');
    makeDatabase(dbPath, 20, 'delete');
    const holder = new Database(dbPath);
    const retrying = sqliteSourceFactory({ busyTimeoutMs: 20, lockWaitMs: 400, retryDelayMs: 50 });
    try {
      holder.exec('BEGIN EXCLUSIVE');
      holder.prepare("INSERT INTO items (tag, body) VALUES ('held', x'00')").run();
      const started = Date.now();
      await assert.rejects(snapshotAndRestore(retrying([sqliteUri(dbPath)], {}, context), [path.join(dir, 'never.db')]), (err: Error) => {
        assert.ok(err instanceof SnapworkerError && err.retryable, `a retryable SnapworkerError, got ${err.name}`);
        assert.match(err.message, new RegExp(`^sqlite source ${dbPath}: backup: database stayed busy or locked by another connection for 0\\.\\d s \\(\\d+ attempts\\)$`));
        assert.equal((err.cause as { code?: string }).code, 'SQLITE_BUSY');
        return true;
      });
      assert.ok(Date.now() - started >= 200, 'it kept trying for a while');

      // Released after the first attempt failed: a later attempt gets through.
      setTimeout(() => holder.exec('COMMIT'), 30);
      await snapshotAndRestore(retrying([sqliteUri(dbPath)], {}, context), [path.join(dir, 'later.db')]);
      assert.equal(sqlite3(path.join(dir, 'later.db'), "SELECT count(*) FROM items WHERE tag = 'held'"), '1');
    } finally {
      holder.close();
    }
    await assertStagingEmpty();
  });

  for (const journalMode of ['wal', 'delete'] as const) {
    it(`shows what a connection holding a ${journalMode}-mode database open sees after a replace: the old file until it reopens, and its writes are lost`, async () => {
      const dir = await freshDir();
      const fresh = path.join(dir, 'fresh.db');
      const live = path.join(dir, 'live.db');
      makeDatabase(fresh, 30, journalMode, 'new');
      makeDatabase(live, 10, journalMode, 'old');
      const holder = new Database(live);
      const count = (db: Database.Database) => (db.prepare('SELECT count(*) AS n FROM items').get() as { n: number }).n;
      try {
        assert.equal(count(holder), 10);
        await snapshotAndRestore(createSqliteSource([sqliteUri(fresh)], {}, context), [live], { replace: true });

        assert.equal(count(holder), 10, 'the open handle still reads the old, unlinked file');
        const write = () => holder.prepare("INSERT INTO items (tag, body) VALUES ('lost', x'00')").run();
        if (journalMode === 'wal') {
          // The WAL it writes to was set aside and unlinked with the old file: the commit "succeeds"
          // and is visible to this handle only.
          write();
          assert.equal(count(holder), 11);
        } else {
          // Opening a rollback journal makes SQLite notice the file is no longer at its path.
          assert.throws(write, (err: Error & { code?: string }) => err.code === 'SQLITE_READONLY_DBMOVED');
        }
        assert.equal(tagsOf(live), 'new|30', 'other connections see the restored database only');
      } finally {
        holder.close();
      }
      assert.equal(tagsOf(live), 'new|30', 'the old handle\'s write is lost, not merged into the restored database');
      assert.equal(sqlite3(live, 'PRAGMA integrity_check'), 'ok');
      assertNoTempFiles(dir);
    });
  }

  it('removes its staged copy when the snapshot is aborted, and a target abort leaves the target untouched', async () => {
    const dir = await freshDir();
    const paths = ['p.db', 'q.db'].map((name) => path.join(dir, name));
    for (const dbPath of paths) makeDatabase(dbPath, 20);
    const source = createSqliteSource(paths.map(sqliteUri), {}, context);
    const controller = new AbortController();
    const existing = path.join(dir, 'existing.db');
    makeDatabase(existing, 3, 'wal', 'old');
    const before = readFileSync(existing);
    const target = createSqliteTarget([sqliteUri(existing), sqliteUri(path.join(dir, 'other.db'))], {}, context);
    const session = await target.begin(manifestFor(source), { signal: controller.signal, progress: nullProgress, replace: true });
    await assert.rejects(async () => {
      for await (const entry of source.entries({ signal: controller.signal, progress: nullProgress, notices: nullNotices })) {
        const { open: openBody, ...header } = entry;
        await session.write(header, await openBody!());
        controller.abort(new AbortedError('test cancelled the job'));
      }
    }, /test cancelled the job/);
    await session.abort();
    await assertStagingEmpty();
    assertNoTempFiles(dir);
    assert.deepEqual(readFileSync(existing), before);
    assert.equal(existsSync(path.join(dir, 'other.db')), false);
  });

  it('round-trips a 150 MB database without holding it in memory', async () => {
    const dir = await freshDir();
    const big = path.join(dir, 'big.db');
    const db = new Database(big);
    db.pragma('journal_mode = wal');
    db.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)');
    const insert = db.prepare('INSERT INTO blobs (body) VALUES (randomblob(8000))');
    db.transaction(() => {
      for (let i = 0; i < 18_000; i++) insert.run();
    })();
    db.close();
    const rssBefore = process.memoryUsage().rss;
    let peakRss = rssBefore;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
    try {
      const result = await snapshotAndRestore(createSqliteSource([sqliteUri(big)], {}, context), [path.join(dir, 'big-restored.db')]);
      assert.ok(result.bytes > 140e6, `${result.bytes} bytes restored`);
    } finally {
      clearInterval(sampler);
    }
    assert.ok(peakRss - rssBefore < 100e6, `RSS grew by ${((peakRss - rssBefore) / 1e6).toFixed(0)} MB for a 150 MB database`);
    assert.equal(sqlite3(path.join(dir, 'big-restored.db'), 'SELECT count(*) FROM blobs'), '18000');
  });
});
