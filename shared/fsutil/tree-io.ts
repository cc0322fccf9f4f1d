import { closeSync, constants, lstatSync, openSync, readdirSync, readSync, type BigIntStats } from 'node:fs';
import { close, lstat, open, read, readdir } from 'node:fs';
import { promisify } from 'node:util';
import { SnapworkerError } from '../errors.js';
import { decodeName, fsPath, showName } from './byte-name.js';

/**
 * The few filesystem calls a tree walk and its small-file reads make, in two flavours:
 *
 * - `async`: each call goes through libuv's thread pool. Calls overlap, which helps on cold
 *   caches and slow disks, but every call costs a thread hop and an event-loop wake-up.
 * - `sync`: each call runs on the calling thread, like tar does. On a warm cache, or a CPU-bound
 *   machine, this is several times faster for small files (see docs/directories.md); callers
 *   keep the event loop responsive by doing sync work in short bursts.
 *
 * Paths and names are in the lossless string form of `byte-name.ts` (names are bytes; any
 * byte string Linux allows comes back unchanged). `lstat` is the bigint form: nanosecond times,
 * and 64-bit inode numbers for hard-link detection, for about 1 µs more per entry.
 *
 * Errors are the raw system errors (`code` ENOENT, EACCES, ...), except a file that shrank.
 */
export interface TreeIo {
  readonly kind: 'sync' | 'async';
  lstat(absPath: string): Promise<BigIntStats>;
  /** Names in the directory (read as bytes, see byte-name.ts), unsorted. */
  readdir(absPath: string): Promise<string[]>;
  /**
   * Exactly `size` bytes of the file, and whether it had grown past `size` since it was listed
   * (one byte more is asked for, so telling costs no extra call; the growth is not stored, as tar
   * does, and the caller reports it as changed). Opened with
   * O_NOFOLLOW|O_NONBLOCK and no type check, to save a syscall per small file: a path swapped
   * for a directory fails the read (EISDIR), one swapped for a FIFO reads as empty and fails as
   * shrunk, a symlink fails to open (ELOOP).
   *
   * @throws SnapworkerError (retryable) naming the file when it shrank below `size`.
   */
  readFile(absPath: string, size: number): Promise<{ bytes: Buffer; grew: boolean }>;
}

// O_NOFOLLOW: a file swapped for a symlink after it was listed is not followed out of the tree.
// O_NONBLOCK: a file swapped for a FIFO does not hang the open; regular files ignore the flag.
export const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

const openFd = promisify(open);
const readFd = promisify(read);
const closeFd = promisify(close);
const lstatAsync = (path: string | Buffer, options: { bigint: true }) =>
  new Promise<BigIntStats>((resolve, reject) => lstat(path, options, (err, stats) => (err ? reject(err) : resolve(stats))));
const readdirAsync = promisify(readdir);

/**
 * Whether a listing read as UTF-8 strings may have lost bytes: Node's decoder turns every invalid
 * sequence into U+FFFD, so a listing without one is exact. Such directories are listed again as
 * bytes; the rest skip a Buffer and a decode per name (most of the cost of byte listings).
 */
function hasInvalidName(names: string[]): boolean {
  for (const name of names) if (name.includes('\uFFFD')) return true;
  return false;
}

/** Thread-pool calls on plain descriptors (a FileHandle costs more than a small file's read). */
export const asyncTreeIo: TreeIo = {
  kind: 'async',
  lstat: (absPath) => lstatAsync(fsPath(absPath), { bigint: true }),
  async readdir(absPath) {
    const names = await readdirAsync(fsPath(absPath));
    return hasInvalidName(names) ? (await readdirAsync(fsPath(absPath), { encoding: 'buffer' })).map(decodeName) : names;
  },
  async readFile(absPath, size) {
    const fd = await openFd(fsPath(absPath), READ_FLAGS);
    try {
      const buffer = Buffer.allocUnsafe(size + 1);
      let filled = 0;
      while (filled <= size) {
        const { bytesRead } = await readFd(fd, buffer, filled, size + 1 - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return readResult(absPath, buffer, size, filled);
    } finally {
      await closeFd(fd);
    }
  },
};

/** The synchronous calls behind `syncTreeIo`, for callers that walk without promises (see `walkTreeSync`). */
export interface SyncTreeCalls {
  lstat(absPath: string): BigIntStats;
  readdir(absPath: string): string[];
  readFile(absPath: string, size: number): { bytes: Buffer; grew: boolean };
}

export const syncTreeCalls: SyncTreeCalls = {
  lstat: (absPath) => lstatSync(fsPath(absPath), { bigint: true }),
  readdir(absPath) {
    const names = readdirSync(fsPath(absPath));
    return hasInvalidName(names) ? readdirSync(fsPath(absPath), { encoding: 'buffer' }).map(decodeName) : names;
  },
  readFile(absPath, size) {
    const fd = openSync(fsPath(absPath), READ_FLAGS);
    try {
      const buffer = Buffer.allocUnsafe(size + 1);
      let filled = 0;
      while (filled <= size) {
        const bytesRead = readSync(fd, buffer, filled, size + 1 - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return readResult(absPath, buffer, size, filled);
    } finally {
      closeSync(fd);
    }
  },
};

/** Calls on the calling thread; the promises are already settled when returned. */
export const syncTreeIo: TreeIo & { readonly calls: SyncTreeCalls } = {
  kind: 'sync',
  calls: syncTreeCalls,
  lstat: async (absPath) => syncTreeCalls.lstat(absPath),
  readdir: async (absPath) => syncTreeCalls.readdir(absPath),
  readFile: async (absPath, size) => syncTreeCalls.readFile(absPath, size),
};

/** A small read of `size + 1` bytes into `buffer` as `readFile` answers it. */
function readResult(absPath: string, buffer: Buffer, size: number, filled: number): { bytes: Buffer; grew: boolean } {
  if (filled < size) throw fileShrank(absPath, size, filled);
  return { bytes: buffer.subarray(0, size), grew: filled > size };
}

/** The error for a file that ended before the size it was listed with. */
export function fileShrank(absPath: string, expected: number, got: number): SnapworkerError {
  return new SnapworkerError(
    `read ${showName(absPath)}: file shrank while being read (listed with ${expected} bytes, only ${got} there); ` +
      'the archive needs the size up front, so retry when the file is not being rewritten',
  );
}
