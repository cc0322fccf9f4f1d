import { lstat, readdir, rmdir, stat, unlink } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { throwIfAborted } from '../../errors.js';
import { errnoCode } from '../../fsutil/errno.js';

export interface SweepOptions {
  /** The repository root: never removed, and removed folders are named relative to it. */
  root: string;
  /** The folder to sweep below (kept even when empty). */
  start: string;
  /** Only what was last changed before this goes. */
  olderThan: Date;
  /** True for the names of the driver's in-progress writes. */
  isTempName: (name: string) => boolean;
  signal?: AbortSignal;
}

/**
 * Removes, below `start`, temp files unchanged since `olderThan` (a live put writes its temp file
 * all the time, so such a one lost its process) and then folders left holding nothing, last
 * changed before `olderThan` (a young folder may be a put's, made a moment before its temp file).
 * Resolves with the removed folders as `a/b/` keys relative to `root`.
 */
export async function sweepLeftovers(options: SweepOptions): Promise<string[]> {
  const removed: string[] = [];
  await sweepFolder(options.start, options, removed);
  return removed;
}

/** True when `dir` was removed. */
async function sweepFolder(dir: string, options: SweepOptions, removed: string[]): Promise<boolean> {
  throwIfAborted(options.signal);
  let names: string[];
  let changedAt: Date;
  try {
    // Its age before this sweep touches it: removing stale files inside makes it look new.
    changedAt = (await stat(dir)).mtime;
    names = await readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return false;
    throw err;
  }
  let empty = true;
  for (const name of names) {
    const child = join(dir, name);
    const info = await lstat(child).catch(() => undefined);
    if (info === undefined) continue; // removed meanwhile
    if (info.isDirectory() && (await sweepFolder(child, options, removed))) continue;
    if (info.isFile() && options.isTempName(name) && info.mtime < options.olderThan && (await removedFile(child))) continue;
    empty = false;
  }
  if (!empty || dir === options.start || dir === options.root || changedAt >= options.olderThan) return false;
  if (!(await removedDir(dir))) return false;
  removed.push(relative(options.root, dir).split(sep).join('/') + '/');
  return true;
}

function removedFile(file: string): Promise<boolean> {
  return unlink(file).then(
    () => true,
    () => false,
  );
}

/** False when the folder is no longer empty: a put took it meanwhile. */
function removedDir(dir: string): Promise<boolean> {
  return rmdir(dir).then(
    () => true,
    () => false,
  );
}
