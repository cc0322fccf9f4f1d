import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** A private temp directory under the worker's staging dir, removed with everything in it. */
export interface StagingDir {
  path: string;
  /** Removes the directory; never throws (cleanup must not mask the error that caused it). */
  remove(): Promise<void>;
}

/** Creates `<stagingDir>/<prefix>XXXXXX` (and `stagingDir` itself when missing). */
export async function createStagingDir(stagingDir: string, prefix: string): Promise<StagingDir> {
  await mkdir(stagingDir, { recursive: true });
  const path = await mkdtemp(join(stagingDir, prefix));
  return {
    path,
    remove: () => rm(path, { recursive: true, force: true }).catch(() => {}),
  };
}
