import { closeFd, fsyncFd, openFd } from './fd.js';

/**
 * Flushes a directory (or file) to stable storage by path. A directory must be fsynced after
 * entries are created, renamed or removed in it, or a crash can lose those names even though the
 * files' own data was synced.
 */
export async function fsyncPath(absPath: string): Promise<void> {
  const fd = await openFd(absPath, 'r');
  try {
    await fsyncFd(fd);
  } finally {
    await closeFd(fd);
  }
}
