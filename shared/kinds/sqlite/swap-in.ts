import { chmod, lstat, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { InvalidInputError, SnapworkerError } from '../../errors.js';
import { assertCanCreateIn } from '../../fsutil/cannot-create.js';
import { fsyncPath, SIDE_FILE_SUFFIXES } from './durable-fs.js';

/**
 * The parent directory must exist and take new files (the copy is staged beside the target); an
 * existing target must be a regular file, never replaced when it is anything else (a directory
 * there is not a database to replace, even with `replace`), and needs `replace`.
 * @throws InvalidInputError naming the target and the problem in one line.
 */
export async function assertPlaceable(target: string, replace: boolean): Promise<void> {
  const dir = path.dirname(target);
  const parent = await stat(dir).catch(() => undefined);
  if (!parent?.isDirectory()) throw new InvalidInputError(`sqlite target ${target}: directory ${dir} does not exist`);
  // lstat: the rename would replace a symlink itself, not the database it points to.
  const existing = await lstat(target).catch(() => undefined);
  if (existing?.isSymbolicLink()) {
    throw new InvalidInputError(`sqlite target ${target}: is a symlink; restore to the database file it points to`);
  }
  if (existing && !existing.isFile()) {
    const what = existing.isDirectory() ? 'a directory' : 'not a regular file';
    throw new InvalidInputError(`sqlite target ${target}: is ${what}, not a database file; a database restores only onto a file or a free path (move it away first)`);
  }
  if (existing && !replace) throw new InvalidInputError(`sqlite target ${target}: a database exists there; replace it with --replace (job field "replace": true)`);
  await assertCanCreateIn(dir, path.basename(target));
}

/**
 * Puts the staged copy at the target path. The old database's side files are renamed aside first
 * (not deleted), so neither a crash nor a failed rename can leave the new file paired with the old
 * WAL or journal, which SQLite would replay into it; on a failed rename they are put back.
 */
export async function swapIn(database: { target: string; tempPath: string }): Promise<void> {
  const { target, tempPath } = database;
  const existing = await stat(target).catch(() => undefined);
  if (existing) await chmod(tempPath, existing.mode & 0o7777);
  const setAside: Array<[original: string, aside: string]> = [];
  try {
    for (const suffix of SIDE_FILE_SUFFIXES) {
      const aside = `${tempPath}.old${suffix}`;
      try {
        await rename(target + suffix, aside);
        setAside.push([target + suffix, aside]);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    await rename(tempPath, target);
  } catch (cause) {
    for (const [original, aside] of setAside) await rename(aside, original).catch(() => undefined);
    throw new SnapworkerError(`sqlite target ${target}: rename staged copy into place: ${(cause as Error).message}`, { cause });
  }
  await Promise.all(setAside.map(([, aside]) => rm(aside, { force: true })));
  await fsyncPath(path.dirname(target));
}
