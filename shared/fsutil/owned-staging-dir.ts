import { readdir } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { createStagingDir, type StagingDir } from './staging-dir.js';
import { removeTree } from './remove-tree.js';

/**
 * `createStagingDir` for work that may be killed outright (SIGKILL, a lost terminal): the folder
 * is named `<prefix><host>-<pid>-XXXXXX`, and before making it, folders of the same prefix that
 * this host made for a process that no longer runs are removed, as a crashed run's are. Only
 * names that say so are touched: another prefix, another host sharing the staging volume, a
 * process still alive (or a pid reused since: then kept, the safe side) are left alone.
 * @returns the new folder, as `createStagingDir`.
 * @throws what `createStagingDir` throws; a failure to sweep is ignored (it is only tidying).
 */
export async function createOwnedStagingDir(stagingDir: string, prefix: string): Promise<StagingDir> {
  const mine = `${prefix}${hostTag()}-`;
  await sweepStale(stagingDir, mine).catch(() => {});
  return createStagingDir(stagingDir, `${mine}${process.pid}-`);
}

async function sweepStale(stagingDir: string, mine: string): Promise<void> {
  for (const name of await readdir(stagingDir)) {
    if (!name.startsWith(mine)) continue;
    const pid = /^(\d+)-[A-Za-z0-9]{6}$/.exec(name.slice(mine.length))?.[1];
    if (pid === undefined || Number(pid) === process.pid || isAlive(Number(pid))) continue;
    await removeTree(join(stagingDir, name)).catch(() => {});
  }
}

/** The host name as it may stand in a file name (pods sharing a staging volume differ by it). */
function hostTag(): string {
  return os.hostname().replace(/[^A-Za-z0-9.]/g, '_') || 'host';
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
