import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { AbortedError, IntegrityError, SnapworkerError } from '../../errors.js';
import { removeSideFiles } from './durable-fs.js';
import { isCorruptError, isNotADatabaseError } from './sqlite-error-codes.js';

/**
 * Which check to run on a copy.
 * - `integrity` (default): `PRAGMA integrity_check`, which also proves every index agrees with its
 *   table (O(N log N)); the check the `sqlite3` tool and operators know, so its `ok` means the same.
 * - `quick`: `PRAGMA quick_check`, the same page and record checks without comparing index content
 *   (O(N)); for very large databases where the full check costs more than the copy.
 */
export type IntegrityCheckMode = 'integrity' | 'quick';

/** How many problems to ask SQLite for and quote in the error; the first few tell the story. */
const MAX_REPORTED_PROBLEMS = 5;

/**
 * Runs in a worker thread: a full check of a large database takes seconds to minutes of CPU, and
 * better-sqlite3 is synchronous, so on the main thread it would stall job lock renewal and events.
 * Plain CommonJS handed over as a string, so it runs the same from `tsx` and from compiled `dist`.
 */
const CHECK_THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.modulePath);
try {
  const db = new Database(workerData.filePath, { readonly: true, fileMustExist: true });
  try {
    const rows = db.pragma(workerData.pragma + '(' + workerData.max + ')');
    parentPort.postMessage({ problems: rows.map((row) => String(Object.values(row)[0])) });
  } finally {
    db.close();
  }
} catch (err) {
  parentPort.postMessage({ error: { code: err && err.code, message: String(err && err.message) } });
}
`;

const betterSqlitePath = createRequire(import.meta.url).resolve('better-sqlite3');

/**
 * Runs the check on the database file at `filePath`, which nothing else may be using (a staged
 * copy). Opens it read-only in a worker thread and afterwards removes the `-wal`/`-shm` files such
 * an open leaves beside a WAL-mode file.
 *
 * @param what names the database in errors (`sqlite source /data/app.db`).
 * @throws IntegrityError when the file is not a database, is malformed, or the check reports
 *   problems; AbortedError when `signal` fires (the thread is terminated).
 */
export async function checkDatabaseIntegrity(
  filePath: string,
  mode: IntegrityCheckMode,
  what: string,
  signal?: AbortSignal,
): Promise<void> {
  const pragma = mode === 'quick' ? 'quick_check' : 'integrity_check';
  try {
    const problems = await runCheckThread(filePath, pragma, what, signal);
    if (problems.length !== 1 || problems[0] !== 'ok') {
      throw new IntegrityError(`${what}: ${pragma} failed: ${problems.join('; ')}`);
    }
  } finally {
    await removeSideFiles(filePath);
  }
}

type CheckReply = { problems: string[] } | { error: { code?: string; message: string } };

function runCheckThread(filePath: string, pragma: string, what: string, signal?: AbortSignal): Promise<string[]> {
  signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    const worker = new Worker(CHECK_THREAD_SOURCE, {
      eval: true,
      workerData: { modulePath: betterSqlitePath, filePath, pragma, max: MAX_REPORTED_PROBLEMS },
    });
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      fn();
      void worker.terminate();
    };
    const onAbort = () => settle(() => reject(new AbortedError(`${what}: ${pragma} aborted`, { cause: signal?.reason })));
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (reply: CheckReply) =>
      settle(() => ('problems' in reply ? resolve(reply.problems) : reject(checkFailure(reply.error, pragma, what)))),
    );
    worker.once('error', (cause) => settle(() => reject(new SnapworkerError(`${what}: ${pragma}: check thread failed`, { cause }))));
    worker.once('exit', (code) => settle(() => reject(new SnapworkerError(`${what}: ${pragma}: check thread exited with code ${code}`))));
  });
}

function checkFailure(error: { code?: string; message: string }, pragma: string, what: string): Error {
  const cause = Object.assign(new Error(error.message), { code: error.code });
  if (isNotADatabaseError(cause)) return new IntegrityError(`${what}: ${pragma}: not an SQLite database`, { cause });
  if (isCorruptError(cause)) return new IntegrityError(`${what}: ${pragma}: database is malformed (${error.message})`, { cause });
  return new SnapworkerError(`${what}: ${pragma}: ${error.message}`, { cause });
}
