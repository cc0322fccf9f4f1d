import { open, rm } from 'node:fs/promises';

/**
 * The files SQLite keeps beside a database: the WAL and its shared-memory index in WAL mode, the
 * rollback journal otherwise. Left behind by an old database, any of them would be replayed into
 * a new file put at the same path, so a replace sets them aside and a staged copy loses them.
 */
export const SIDE_FILE_SUFFIXES = ['-wal', '-shm', '-journal'] as const;

/** Removes the side files of the database at `filePath`; missing ones are fine. */
export async function removeSideFiles(filePath: string): Promise<void> {
  await Promise.all(SIDE_FILE_SUFFIXES.map((suffix) => rm(filePath + suffix, { force: true })));
}

export { fsyncPath } from '../../fsutil/fsync.js';
