import { copyFile } from 'node:fs/promises';
import { SnapworkerError, throwIfAborted } from '../../errors.js';
import { errnoCode } from '../../fsutil/errno.js';
import { hasSideFile, inspectLiveFiles, sameLiveFiles, type LiveFiles } from './live-files.js';

/**
 * The database's files changed while they were copied: a process opened it meanwhile. Retryable;
 * the next attempt sees that process's side files and reads through SQLite's locks instead.
 */
export class FilesChangedError extends SnapworkerError {
  constructor(message: string) {
    super(message);
    this.name = 'FilesChangedError';
  }
}

/**
 * Copies a database that no process has open (its side files say so, see `docs/sqlite.md`) byte
 * for byte to `destPath`, with its `-wal` or hot `-journal` beside the copy, so SQLite can replay
 * or roll them back there as the next opener of the live files would: the live directory is
 * never written, which a read-only mount or a foreign-owned folder would refuse anyway.
 *
 * `before` is the look taken when choosing this method; the files are looked at again after the
 * copy, and any change (a file created, removed, resized or written) throws, since a copy taken
 * while a process writes could mix two states. The `-shm` is never copied: SQLite rebuilds it
 * from the WAL.
 *
 * @throws FilesChangedError when the live files changed during the copy; AbortedError when
 *   `signal` fires; the `fs` error of a file that cannot be read. The caller removes `destPath`
 *   and its side files on failure.
 */
export async function copyAtRest(sourcePath: string, destPath: string, before: LiveFiles, what: string, signal?: AbortSignal): Promise<void> {
  try {
    await copyFile(sourcePath, destPath);
    for (const suffix of ['-wal', '-journal']) {
      throwIfAborted(signal);
      if (hasSideFile(before, suffix)) await copyFile(sourcePath + suffix, destPath + suffix);
    }
  } catch (err) {
    // A side file seen a moment ago is gone: the process that owned it closed the database.
    if (errnoCode(err) === 'ENOENT') throw new FilesChangedError(`${what}: copy: a file of the database disappeared while it was copied`);
    throw err;
  }
  if (!sameLiveFiles(before, await inspectLiveFiles(sourcePath))) {
    throw new FilesChangedError(`${what}: copy: the database's files changed while they were copied (a process opened it)`);
  }
}
