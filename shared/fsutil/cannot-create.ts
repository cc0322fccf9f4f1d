import { access, constants } from 'node:fs/promises';
import { InvalidInputError, NoSpaceError, SnapworkerError } from '../errors.js';
import { errnoCode, errorText, isNoSpaceError } from './errno.js';

/** Errors no retry can mend: the operator must change permissions or the mount. */
const REFUSED = new Map([
  ['EACCES', 'permission denied'],
  ['EPERM', 'permission denied'],
  ['EROFS', 'read-only file system'],
]);

/**
 * The one wording for a restore that cannot make `name` in `dir`:
 * `restore: cannot create <name> in <dir>: permission denied`. Permission and read-only errors
 * are InvalidInputError (not retried, exit 2), a full disk NoSpaceError, anything else a
 * (retryable) SnapworkerError; `cause` is kept.
 */
export function cannotCreate(dir: string, name: string, cause: unknown): SnapworkerError {
  const code = errnoCode(cause);
  const refused = code === undefined ? undefined : REFUSED.get(code);
  const head = `restore: cannot create ${name} in ${dir}`;
  if (refused) return new InvalidInputError(`${head}: ${refused}`, { cause });
  if (isNoSpaceError(cause)) return new NoSpaceError(`${head}: no space left (${code})`, { cause });
  return new SnapworkerError(`${head}: ${errorText(cause)}`, { cause });
}

/**
 * Checks, before any byte of a snapshot is read, that this process may create entries in `dir`
 * (`access` asks the kernel, so a read-only mount or a dropped capability counts even for root).
 * @throws the error of `cannotCreate(dir, name, …)`.
 */
export async function assertCanCreateIn(dir: string, name: string): Promise<void> {
  try {
    await access(dir, constants.W_OK | constants.X_OK);
  } catch (cause) {
    throw cannotCreate(dir, name, cause);
  }
}
