import { accessSync, constants, statSync } from 'node:fs';
import { errnoCode } from './errno.js';

/**
 * Why `dir` cannot hold this process's temp files (`does not exist`, `is not a directory`,
 * `is not writable (EROFS)`), or undefined when it can. Synchronous: it runs once, at start.
 * `access` asks the kernel, so a read-only mount is caught even for root.
 */
export function writableDirProblem(dir: string): string | undefined {
  try {
    if (!statSync(dir).isDirectory()) return 'is not a directory';
    accessSync(dir, constants.W_OK | constants.X_OK);
    return undefined;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') return 'does not exist';
    return `is not writable (${code ?? String(err)})`;
  }
}
