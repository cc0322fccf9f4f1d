import { chmod, lstat, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from './errno.js';

/**
 * Removes a tree like `rm -rf`, also when it holds directories without write or search
 * permission for us (a restored tree may contain `0o555` or `0o000` directories, which a plain
 * recursive remove cannot empty unless we are root). A missing path is not an error.
 */
export async function removeTree(absPath: string): Promise<void> {
  try {
    await rm(absPath, { recursive: true, force: true });
    return;
  } catch (err) {
    if (!isPermissionError(err)) throw err;
  }
  await grantOwnerAccess(absPath);
  await rm(absPath, { recursive: true, force: true });
}

/** Gives the owner rwx on every directory of the tree so its entries can be listed and unlinked. */
async function grantOwnerAccess(dir: string): Promise<void> {
  const stats = await lstat(dir).catch(() => undefined);
  if (!stats?.isDirectory()) return;
  await chmod(dir, (stats.mode & 0o7777) | 0o700);
  for (const name of await readdir(dir)) await grantOwnerAccess(path.join(dir, name));
}

function isPermissionError(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'EACCES' || code === 'EPERM';
}
