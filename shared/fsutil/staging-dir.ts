import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SnapworkerError } from '../errors.js';

/** A private temp directory under the worker's staging dir, removed with everything in it. */
export interface StagingDir {
  path: string;
  /** Removes the directory; never throws (cleanup must not mask the error that caused it). */
  remove(): Promise<void>;
}

/**
 * Creates `<stagingDir>/<prefix>XXXXXX`. The staging dir itself is never created here: the worker
 * checks at start that it exists and is writable (a missing one usually means a volume that did
 * not mount, and creating it would stage gigabytes on the wrong disk).
 *
 * @throws SnapworkerError naming the staging dir when the temp directory cannot be made.
 */
export async function createStagingDir(stagingDir: string, prefix: string): Promise<StagingDir> {
  let path: string;
  try {
    path = await mkdtemp(join(stagingDir, prefix));
  } catch (cause) {
    throw new SnapworkerError(`staging directory ${stagingDir} (SNAPWORKER_STAGING_DIR): ${(cause as Error).message}`, { cause });
  }
  return {
    path,
    remove: () => rm(path, { recursive: true, force: true }).catch(() => {}),
  };
}
