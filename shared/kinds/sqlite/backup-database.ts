import { constants } from 'node:fs';
import { access, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, isNoSpaceError } from '../../fsutil/errno.js';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { AbortedError, IntegrityError, InvalidInputError, NoSpaceError, NotFoundError, SnapworkerError, throwIfAborted } from '../../errors.js';
import { removeSideFiles, SIDE_FILE_SUFFIXES } from './durable-fs.js';
import { isBusyError, isCantOpenError, isCorruptError, isFullError, isHotJournalError, isNotADatabaseError } from './sqlite-error-codes.js';
import { inspectLiveFiles, readingCreatesSideFiles, type LiveFiles } from './live-files.js';
import { copyAtRest, FilesChangedError } from './resting-copy.js';

/** How an online backup is paced and how long it waits for locks. */
export interface SqliteBackupOptions {
  /**
   * Pages copied per backup step; the event loop runs between steps and the abort signal is
   * checked there. Default 4096 (16 MiB at the usual 4 KiB page size).
   */
  pagesPerStep?: number;
  /**
   * How long SQLite itself waits for a lock within one attempt. Default 100 ms. Kept short on
   * purpose: SQLite's busy handler sleeps synchronously, which would stall the worker's event loop;
   * longer waits happen between attempts, asynchronously.
   */
  busyTimeoutMs?: number;
  /**
   * How long to keep trying while the database is busy or locked before failing. Default 30 s.
   * A rollback-journal database under back-to-back writes leaves readers only short gaps between
   * commits, so it is the time spent, not a count of attempts, that tells "busy" from "stuck".
   */
  lockWaitMs?: number;
  /** Pause before the second attempt, doubled for each further one (with jitter). Default 20 ms. */
  retryDelayMs?: number;
  /** Longest pause between attempts. Default 1000 ms. */
  maxRetryDelayMs?: number;
}

export const BACKUP_DEFAULTS: Required<SqliteBackupOptions> = {
  pagesPerStep: 4096,
  busyTimeoutMs: 100,
  lockWaitMs: 30_000,
  retryDelayMs: 20,
  maxRetryDelayMs: 1000,
};

/** What the copy holds, read inside the same read transaction the backup copied from. */
export interface DatabaseFacts {
  pageCount: number;
  pageSize: number;
  /** Bytes of the copy (pageCount × pageSize). */
  sizeBytes: number;
  /** `wal`, `delete`, ... as the live database reports it. */
  journalMode: string;
}

/**
 * Copies the live database at `sourcePath` into a new file `destPath` with SQLite's online backup
 * API, consistent as of one instant, while other processes keep writing.
 *
 * Consistency: the source connection opens a read transaction before the first step and keeps it
 * until the last, and every step reads inside it. SQLite would otherwise restart the backup each
 * time another process commits between steps, which under steady writes never finishes. In WAL
 * mode writers carry on meanwhile (the WAL cannot be checkpointed past this reader, so it grows
 * for the duration); in rollback-journal mode a writer's commit waits until the copy is done.
 *
 * Nothing is ever written next to the live database, so a read-only mount or a folder the worker
 * may not write works: a WAL database missing its `-wal` or `-shm` (which a reader would have to
 * create, and could not remove) and a database with a hot journal (left by a killed writer, which
 * a read-only connection may not roll back) are copied at rest and recovered in staging instead.
 *
 * @throws NotFoundError when the file does not exist; InvalidInputError when it is not a regular
 *   file, not an SQLite database, or a file of it is not readable by the worker; IntegrityError
 *   when SQLite finds it malformed while copying; SnapworkerError (retryable) when it stayed busy
 *   or locked, or its files kept changing while copied at rest, for `lockWaitMs`;
 *   AbortedError when `signal` fires. `destPath` is removed on failure.
 */
export async function backupDatabase(
  sourcePath: string,
  destPath: string,
  options: SqliteBackupOptions = {},
  signal?: AbortSignal,
): Promise<DatabaseFacts> {
  const opts = { ...BACKUP_DEFAULTS, ...options };
  const what = `sqlite source ${sourcePath}`;
  await assertRegularFile(sourcePath, what);
  const startedAt = Date.now();
  let delayMs = opts.retryDelayMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await backupWithoutWriting(sourcePath, destPath, opts, what, signal);
    } catch (err) {
      await discardCopy(destPath);
      if (!isBusyError(err) && !(err instanceof FilesChangedError)) throw await describeFailure(err, sourcePath, destPath, what);
      const waitedMs = Date.now() - startedAt;
      if (waitedMs + delayMs > opts.lockWaitMs) {
        const why = err instanceof FilesChangedError ? "copy: the database's files kept changing while copied at rest" : 'backup: database stayed busy or locked by another connection';
        throw new SnapworkerError(`${what}: ${why} for ${(waitedMs / 1000).toFixed(1)} s (${attempt} attempts)`, { cause: err });
      }
      // Jitter, so the attempts do not fall into step with a writer's commit rhythm.
      await pause(delayMs * (0.5 + Math.random() / 2), signal, what);
      delayMs = Math.min(delayMs * 2, opts.maxRetryDelayMs);
    }
  }
}

/**
 * One attempt that never writes next to the live database (see `docs/sqlite.md`, "Read-only and
 * foreign-owned databases"): a read-only connection when it needs nothing it would have to
 * create; otherwise, and for a hot journal a read-only connection cannot roll back, a copy of the
 * files at rest that SQLite recovers in staging.
 */
async function backupWithoutWriting(
  sourcePath: string,
  destPath: string,
  opts: Required<SqliteBackupOptions>,
  what: string,
  signal: AbortSignal | undefined,
): Promise<DatabaseFacts> {
  const files = await inspectLiveFiles(sourcePath);
  if (readingCreatesSideFiles(files)) return backupFromRestingCopy(sourcePath, destPath, files, opts, what, signal);
  try {
    return await backupOnce(sourcePath, destPath, opts, signal);
  } catch (err) {
    if (!isHotJournalError(err)) throw err;
    await discardCopy(destPath);
    // The journal's writer died mid-transaction (SQLite checked that no process holds its lock).
    return backupFromRestingCopy(sourcePath, destPath, await inspectLiveFiles(sourcePath), opts, what, signal);
  }
}

/**
 * Copies the files at rest to `destPath`, then opens the copy read-write so SQLite replays its WAL
 * or rolls back its hot journal there; closing it checkpoints the WAL into the copy, leaving one
 * complete file, as the online backup would.
 */
async function backupFromRestingCopy(
  sourcePath: string,
  destPath: string,
  files: LiveFiles,
  opts: Required<SqliteBackupOptions>,
  what: string,
  signal: AbortSignal | undefined,
): Promise<DatabaseFacts> {
  await copyAtRest(sourcePath, destPath, files, what, signal);
  throwIfAborted(signal);
  const copy = new Database(destPath, { fileMustExist: true, timeout: opts.busyTimeoutMs });
  let facts: Omit<DatabaseFacts, 'sizeBytes'>;
  try {
    facts = readFacts(copy);
    copy.exec('COMMIT');
  } finally {
    copy.close();
  }
  await removeSideFiles(destPath);
  const { size } = await stat(destPath);
  return { ...facts, sizeBytes: size };
}

async function backupOnce(
  sourcePath: string,
  destPath: string,
  opts: Required<SqliteBackupOptions>,
  signal: AbortSignal | undefined,
): Promise<DatabaseFacts> {
  throwIfAborted(signal);
  // Read-only: a snapshot must never write to the live database (no checkpoint, no recovery).
  const source = new Database(sourcePath, { readonly: true, fileMustExist: true, timeout: opts.busyTimeoutMs });
  try {
    const facts = readFacts(source);
    await source.backup(destPath, {
      progress: () => {
        throwIfAborted(signal);
        return opts.pagesPerStep;
      },
    });
    source.exec('COMMIT');
    const { size } = await stat(destPath);
    return { ...facts, sizeBytes: size };
  } finally {
    source.close();
  }
}

/**
 * Opens a read transaction on `db` and reads the facts the copy will hold. The transaction stays
 * open (the caller commits or closes): it pins the snapshot the backup copies.
 */
function readFacts(db: Database.Database): Omit<DatabaseFacts, 'sizeBytes'> {
  db.exec('BEGIN');
  // BEGIN is deferred; the first read takes the shared lock / WAL read mark that pins the snapshot.
  db.prepare('SELECT count(*) FROM sqlite_schema').get();
  return {
    pageCount: db.pragma('page_count', { simple: true }) as number,
    pageSize: db.pragma('page_size', { simple: true }) as number,
    journalMode: String(db.pragma('journal_mode', { simple: true })),
  };
}

async function assertRegularFile(filePath: string, what: string): Promise<void> {
  let info;
  try {
    info = await stat(filePath);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${what}: no such file`, { cause });
    if (errnoCode(cause) === 'EACCES') throw permissionDenied(what, filePath, cause);
    throw new SnapworkerError(`${what}: stat: ${(cause as Error).message}`, { cause });
  }
  if (!info.isFile()) throw new InvalidInputError(`${what}: not a regular file`);
}

async function describeFailure(err: unknown, sourcePath: string, destPath: string, what: string): Promise<unknown> {
  if (err instanceof SnapworkerError) return err;
  if (isNoSpaceError(err) || isFullError(err)) {
    return new NoSpaceError(`${what}: copy: no space left on device writing the copy in ${path.dirname(destPath)}`, { cause: err });
  }
  if (errnoCode(err) === 'EACCES' || isCantOpenError(err)) {
    const unreadable = await firstUnreadable(sourcePath);
    if (unreadable !== undefined) {
      return permissionDenied(what, unreadable, err);
    }
  }
  if (isNotADatabaseError(err)) return new InvalidInputError(`${what}: not an SQLite database`, { cause: err });
  if (isCorruptError(err)) return new IntegrityError(`${what}: backup: database is malformed`, { cause: err });
  return new SnapworkerError(`${what}: backup: ${(err as Error).message}`, { cause: err });
}

async function discardCopy(destPath: string): Promise<void> {
  await rm(destPath, { force: true });
  await removeSideFiles(destPath);
}

async function pause(ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (cause) {
    throw new AbortedError(`${what}: backup aborted while waiting for a lock`, { cause });
  }
}

/** The first file of the database (itself, an existing side file) the worker may not read. */
async function firstUnreadable(sourcePath: string): Promise<string | undefined> {
  for (const file of [sourcePath, ...SIDE_FILE_SUFFIXES.map((suffix) => sourcePath + suffix)]) {
    try {
      await access(file, constants.R_OK);
    } catch (err) {
      if (errnoCode(err) === 'EACCES') return file;
    }
  }
  return undefined;
}

/** Not retried: the worker's rights change only when an operator changes them. */
function permissionDenied(what: string, file: string, cause: unknown): InvalidInputError {
  return new InvalidInputError(`${what}: cannot read ${file}: permission denied; give the worker read access to the database, its -wal, -shm and -journal files and their folder`, { cause });
}
