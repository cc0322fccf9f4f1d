import { open, stat } from 'node:fs/promises';
import { errnoCode } from '../../fsutil/errno.js';
import { SIDE_FILE_SUFFIXES } from './durable-fs.js';

/** The identity of one file at one moment; `undefined` when the file does not exist. */
type FileStamp = { ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint } | undefined;

/**
 * What lies on disk for a live database: its journal mode as the file header says it, and which
 * side files exist, with a stamp of each so a later look can tell whether anything changed.
 */
export interface LiveFiles {
  /** Header bytes 18 and 19 are 2 (https://www.sqlite.org/fileformat.html#file_format_version_numbers). */
  walMode: boolean;
  /**
   * The header's file change counter (bytes 24-27), which every rollback-mode commit increments:
   * a commit is seen even when it lands within the file system's timestamp granularity.
   */
  changeCounter: number;
  /** Stamps of the database (`''`) and of each side file (`-wal`, `-shm`, `-journal`). */
  stamps: ReadonlyMap<string, FileStamp>;
}

/** Looks at the database at `dbPath` and its side files without opening it through SQLite. */
export async function inspectLiveFiles(dbPath: string): Promise<LiveFiles> {
  const stamps = new Map<string, FileStamp>();
  for (const suffix of ['', ...SIDE_FILE_SUFFIXES]) stamps.set(suffix, await stampOf(dbPath + suffix));
  return { ...(await readHeader(dbPath)), stamps };
}

/** True when `suffix` (`-wal`, `-shm`, `-journal`) exists beside the database. */
export function hasSideFile(files: LiveFiles, suffix: string): boolean {
  return files.stamps.get(suffix) !== undefined;
}

/**
 * True when a read-only connection would have to create files next to the database: a WAL
 * database needs its `-wal` and `-shm`, and SQLite creates whichever is missing (and a read-only
 * connection cannot remove them again), or fails to open where it may not create them.
 */
export function readingCreatesSideFiles(files: LiveFiles): boolean {
  return files.walMode && !(hasSideFile(files, '-wal') && hasSideFile(files, '-shm'));
}

/** True when no file of the database was created, removed, resized or written between the two looks. */
export function sameLiveFiles(before: LiveFiles, after: LiveFiles): boolean {
  if (before.changeCounter !== after.changeCounter || before.walMode !== after.walMode) return false;
  for (const [suffix, stamp] of before.stamps) {
    const later = after.stamps.get(suffix);
    if (stamp === undefined || later === undefined) {
      if (stamp !== later) return false;
      continue;
    }
    // The -shm changes whenever a reader takes a read mark; only its replacement matters here.
    if (stamp.ino !== later.ino) return false;
    if (suffix === '-shm') continue;
    if (stamp.size !== later.size || stamp.mtimeNs !== later.mtimeNs || stamp.ctimeNs !== later.ctimeNs) return false;
  }
  return true;
}

async function stampOf(filePath: string): Promise<FileStamp> {
  try {
    const info = await stat(filePath, { bigint: true });
    return { ino: info.ino, size: info.size, mtimeNs: info.mtimeNs, ctimeNs: info.ctimeNs };
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

async function readHeader(dbPath: string): Promise<Pick<LiveFiles, 'walMode' | 'changeCounter'>> {
  const handle = await open(dbPath, 'r');
  try {
    const header = Buffer.alloc(28);
    const { bytesRead } = await handle.read(header, 0, header.length, 0);
    // An empty file is a valid, empty database in rollback mode.
    if (bytesRead < header.length) return { walMode: false, changeCounter: 0 };
    return { walMode: header[18] === 2 || header[19] === 2, changeCounter: header.readUInt32BE(24) };
  } finally {
    await handle.close();
  }
}
