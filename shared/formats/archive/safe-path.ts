import { IntegrityError, UnsafeEntryError } from '../../errors.js';
import { nameByteLength, showName } from '../../fsutil/byte-name.js';
import type { EntryHeader, EntryType } from '../../snapshot/entry.js';
import { MANIFEST_ENTRY, SEAL_ENTRY, SUMS_ENTRY } from './manifest.js';

/** Longest entry path or link target accepted, in bytes (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;

const RESERVED_NAMES = new Set([MANIFEST_ENTRY, SUMS_ENTRY, SEAL_ENTRY]);
const ENTRY_TYPES: ReadonlySet<EntryType> = new Set(['file', 'directory', 'symlink', 'hardlink', 'fifo', 'chardev', 'blockdev']);

/**
 * An entry path (or link target) as it goes into an error message: escaped when it holds
 * control characters or bytes that are not UTF-8, shortened when long (see `showName`). Every
 * message that names an entry uses this.
 */
export function showPath(path: string): string {
  return showName(path);
}

/**
 * Throws UnsafeEntryError unless `path` is a normalized relative POSIX path: not empty, not
 * absolute, no `.`, `..` or empty components (so no trailing `/`), no NUL, at most
 * MAX_PATH_BYTES. Any other byte is a valid name byte on Linux (newline, backslash, bytes that
 * are not UTF-8) and is kept.
 */
export function assertSafeEntryPath(path: string): void {
  const problem = pathProblem(path);
  if (problem) throw new UnsafeEntryError(`archive: entry ${showPath(path)}: ${problem}`);
}

/** One pass over the path's characters (this runs for every entry written and read). */
function pathProblem(path: string): string | undefined {
  if (path === '') return 'empty path';
  if (path.length > MAX_PATH_BYTES / 4 && nameByteLength(path) > MAX_PATH_BYTES) return `path longer than ${MAX_PATH_BYTES} bytes`;
  if (path.charCodeAt(0) === SLASH) return path.includes('\0') ? 'NUL in path' : 'absolute path';
  let problem: string | undefined;
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    const code = i === path.length ? SLASH : path.charCodeAt(i);
    if (code === 0) return 'NUL in path';
    if (code !== SLASH || problem !== undefined) continue;
    const length = i - start;
    if (length === 2 && path.charCodeAt(start) === DOT && path.charCodeAt(start + 1) === DOT) problem = '".." component in path';
    else if (length === 0 || (length === 1 && path.charCodeAt(start) === DOT)) problem = 'path is not normalized (empty or "." component)';
    start = i + 1;
  }
  return problem;
}

const SLASH = 0x2f;
const DOT = 0x2e;

/**
 * Checks the structure of a sequence of payload entries as it is written or read: safe paths,
 * no reserved names, no duplicates, nothing stored "through" a symlink or under a non-directory,
 * hard links only to earlier entries, sizes that fit the type. Symlink targets are data: any
 * bytes but NUL (restore never follows a link, so where one points cannot matter).
 * Memory grows with the number of entries (one map slot per path and per directory), never
 * with their data.
 */
export class EntryTracker {
  private readonly kinds = new Map<string, EntryType>();
  private readonly impliedDirectories = new Set<string>();
  /** The last parent directory whose ancestors all passed `checkAncestors`. */
  private checkedParent: string | undefined;

  /** Checks `header` against the entries seen so far and records it. Throws UnsafeEntryError or IntegrityError. */
  add(header: EntryHeader): void {
    const { path, type } = header;
    assertSafeEntryPath(path);
    // The name is escaped for messages only when one is needed (this runs for every entry).
    const name = (): string => showPath(path);
    if (RESERVED_NAMES.has(path)) throw new IntegrityError(`archive: entry ${name()}: name is reserved for the archive's own entries`);
    if (!ENTRY_TYPES.has(type)) throw new UnsafeEntryError(`archive: entry ${name()}: unsupported entry type ${String(type)}`);
    if (this.kinds.has(path)) throw new IntegrityError(`archive: entry ${name()}: duplicate path`);
    if (type !== 'directory' && this.impliedDirectories.has(path)) {
      throw new IntegrityError(`archive: entry ${name()}: a ${type} where earlier entries need a directory`);
    }
    if (type !== 'file' && header.size !== 0) throw new IntegrityError(`archive: entry ${name()}: a ${type} with size ${header.size}`);
    if (!Number.isSafeInteger(header.size) || header.size < 0) throw new IntegrityError(`archive: entry ${name()}: invalid size ${header.size}`);
    this.checkAncestors(path);
    if (type === 'symlink') checkSymlinkTarget(name(), header.linkTarget ?? '');
    if (type === 'hardlink') this.checkHardLinkTarget(name(), header.linkTarget ?? '');
    this.kinds.set(path, type);
  }

  /** Forgets an entry that was checked but then left out (its file vanished before it was read). */
  forget(path: string): void {
    this.kinds.delete(path);
  }

  /** The type recorded for `path`, if an entry had that path. */
  typeOf(path: string): EntryType | undefined {
    return this.kinds.get(path);
  }

  /** A hard link names an earlier entry of this archive that is not a directory (so it lies inside the target). */
  private checkHardLinkTarget(name: string, target: string): void {
    const kind = this.kinds.get(target);
    if (kind === undefined) {
      const problem = pathProblem(target);
      if (problem) throw new UnsafeEntryError(`archive: entry ${name}: hard link to ${showPath(target)}: ${problem}`);
      throw new UnsafeEntryError(`archive: entry ${name}: hard link to ${showPath(target)}, which is not an earlier entry`);
    }
    if (kind === 'directory') throw new IntegrityError(`archive: entry ${name}: hard link to the directory ${showPath(target)}`);
  }

  private checkAncestors(path: string): void {
    // Siblings come one after another: once a parent passed, it passes again, since an entry at
    // the path of a checked ancestor can only be a directory (anything else is refused above).
    const parentEnd = path.lastIndexOf('/');
    if (parentEnd === -1) return;
    if (this.checkedParent !== undefined && parentEnd === this.checkedParent.length && path.startsWith(this.checkedParent)) return;
    for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) {
      const ancestor = path.slice(0, slash);
      const kind = this.kinds.get(ancestor);
      if (kind === 'symlink') throw new UnsafeEntryError(`archive: entry ${showPath(path)}: path goes through the symlink ${showPath(ancestor)}`);
      if (kind !== undefined && kind !== 'directory') throw new IntegrityError(`archive: entry ${showPath(path)}: path goes through the ${kind} ${showPath(ancestor)}`);
    }
    for (let slash = path.lastIndexOf('/'); slash !== -1; slash = path.lastIndexOf('/', slash - 1)) {
      const ancestor = path.slice(0, slash);
      if (this.impliedDirectories.has(ancestor)) break; // its own ancestors were recorded with it
      this.impliedDirectories.add(ancestor);
      if (slash === 0) break;
    }
    this.checkedParent = path.slice(0, parentEnd);
  }
}

/** What Linux allows as a symlink target: 1 to PATH_MAX - 1 bytes, no NUL. */
function checkSymlinkTarget(name: string, target: string): void {
  const refuse = (problem: string): never => {
    throw new IntegrityError(`archive: entry ${name}: symlink target ${showPath(target)}: ${problem}`);
  };
  if (target === '') refuse('empty target');
  if (target.includes('\0')) refuse('NUL in target');
  if (target.length >= MAX_PATH_BYTES / 4 && nameByteLength(target) >= MAX_PATH_BYTES) refuse(`${MAX_PATH_BYTES} bytes or longer`);
}
