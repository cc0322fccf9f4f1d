import type { Xattr } from '../snapshot/xattr.js';
import { errnoCode } from './errno.js';
import { getXattr, listXattrs, setXattr } from './native-fs.js';

/**
 * The extended attributes of a file, directory or symlink itself (never followed), every
 * namespace the process can read: `user.*` always, `trusted.*` only as root (the kernel lists
 * them to CAP_SYS_ADMIN only), `security.*` and `system.posix_acl_*` (POSIX ACLs) as stored.
 * Undefined when there are none, or the filesystem does not support them. An attribute removed
 * between listing and reading is left out. An attribute whose name is not UTF-8 cannot be read
 * back by name here (names come from the addon as text); it is left out and passed to
 * `leftOut`, so the caller can name it instead of dropping it in silence.
 *
 * @throws the raw system error (ENOENT when the path vanished, EACCES, ...).
 */
export function readXattrs(absPath: string | Buffer, leftOut?: (name: string, reason: string) => void): Xattr[] | undefined {
  const names = listXattrs(absPath, true);
  if (names.length === 0) return undefined;
  const xattrs: Xattr[] = [];
  for (const name of names.sort()) {
    try {
      xattrs.push({ name, value: getXattr(absPath, name, true) });
    } catch (err) {
      if (errnoCode(err) !== 'ENODATA') throw err;
      // U+FFFD: the name's bytes were not UTF-8, so reading it by its decoded name finds nothing.
      if (name.includes('\uFFFD')) leftOut?.(name, 'extended attribute name is not UTF-8; not stored');
    }
  }
  return xattrs.length > 0 ? xattrs : undefined;
}

/**
 * Errors that mean the target cannot keep an attribute, rather than that the restore failed:
 * no xattr support (EOPNOTSUPP, the same number as ENOTSUP), not allowed for this process or
 * this file type (EPERM: `trusted.*` without CAP_SYS_ADMIN, `user.*` on a symlink; EACCES), or
 * no room for it on this filesystem (E2BIG: ext4 keeps a file's attributes in one block).
 */
const NOT_KEPT = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EPERM', 'EACCES', 'E2BIG']);

/**
 * Sets each attribute on `absPath` itself (never followed). Attributes the filesystem or the
 * process cannot keep are passed to `notKept` with the errno name as the reason (`EOPNOTSUPP`),
 * and the others still set.
 *
 * @throws the raw system error for any other failure (ENOSPC, EIO, ...).
 */
export function writeXattrs(absPath: string | Buffer, xattrs: readonly Xattr[], notKept: (name: string, reason: string) => void): void {
  for (const { name, value } of xattrs) {
    try {
      setXattr(absPath, name, value, true);
    } catch (err) {
      const code = errnoCode(err);
      if (code === undefined || !NOT_KEPT.has(code)) throw err;
      notKept(name, code);
    }
  }
}
