import { IntegrityError, UnsafePathError } from '../errors.js';
import type { EntryHeader, EntryType } from './archive-entry.js';
import { MANIFEST_ENTRY, SEAL_ENTRY, SUMS_ENTRY } from './manifest.js';

/** Longest entry path or link target accepted, in bytes (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;

const RESERVED_NAMES = new Set([MANIFEST_ENTRY, SUMS_ENTRY, SEAL_ENTRY]);

// Control characters would break the one-line-per-file SHA256SUMS format (sha256sum escapes them
// with a leading backslash, which we refuse to need) and have no business in a snapshot path.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

/** A path as it goes into an error message: plain when printable, JSON-quoted otherwise. */
export function showPath(path: string): string {
  return CONTROL_CHARACTERS.test(path) || path === '' ? JSON.stringify(path) : path;
}

/**
 * Throws UnsafePathError unless `path` is a normalized relative POSIX path: not empty, not
 * absolute, no `.`, `..` or empty components (so no trailing `/`), no backslash, NUL or other
 * control characters, at most MAX_PATH_BYTES.
 */
export function assertSafeEntryPath(path: string): void {
  const problem = pathProblem(path);
  if (problem) throw new UnsafePathError(`archive: entry ${showPath(path)}: ${problem}`);
}

function pathProblem(path: string): string | undefined {
  if (path === '') return 'empty path';
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) return `path longer than ${MAX_PATH_BYTES} bytes`;
  if (CONTROL_CHARACTERS.test(path)) return 'NUL or control character in path';
  if (path.includes('\\')) return 'backslash in path';
  if (path.startsWith('/')) return 'absolute path';
  for (const component of path.split('/')) {
    if (component === '..') return '".." component in path';
    if (component === '.' || component === '') return 'path is not normalized (empty or "." component)';
  }
  return undefined;
}

/**
 * The directory a symlink must stay inside: the entry's top-level directory for nested entries
 * (`data/` for `data/a/link`), the archive root for top-level ones. Restore targets map such a
 * top-level directory onto their target, so a link reaching out of it reaches out of the target.
 */
function payloadRootDepth(linkPath: string): number {
  return linkPath.includes('/') ? 1 : 0;
}

/**
 * Throws UnsafePathError unless the symlink at `linkPath` pointing to `target` stays inside its
 * payload root. The target must be relative; `..` components are allowed only at its start
 * (they climb from the link's own directory, whose ancestors the archive guarantees are real
 * directories), because a `..` after a normal component could climb out through another symlink.
 */
export function assertSafeLinkTarget(linkPath: string, target: string): void {
  const refuse = (problem: string): never => {
    throw new UnsafePathError(`archive: entry ${showPath(linkPath)}: symlink target ${showPath(target)}: ${problem}`);
  };
  if (target === '') refuse('empty target');
  if (Buffer.byteLength(target) > MAX_PATH_BYTES) refuse(`longer than ${MAX_PATH_BYTES} bytes`);
  if (CONTROL_CHARACTERS.test(target)) refuse('NUL or control character');
  if (target.includes('\\')) refuse('backslash');
  if (target.startsWith('/')) refuse('absolute target');
  const rootDepth = payloadRootDepth(linkPath);
  let depth = linkPath.split('/').length - 1; // the link's directory
  let descended = false;
  for (const component of target.split('/')) {
    if (component === '' || component === '.') continue;
    if (component !== '..') {
      descended = true;
      continue;
    }
    if (descended) refuse('".." after a normal component (could climb out through another link)');
    depth -= 1;
    if (depth < rootDepth) refuse(rootDepth === 0 ? 'points outside the archive' : 'points outside its top-level directory');
  }
}

/**
 * Checks the structure of a sequence of payload entries as it is written or read: safe paths,
 * no reserved names, no duplicates, nothing stored "through" a symlink or under a file, no link
 * escaping its payload root, sizes that fit the type. Memory grows with the number of entries
 * (one map slot per path and per directory), never with their data.
 */
export class EntryTracker {
  private readonly kinds = new Map<string, EntryType>();
  private readonly impliedDirectories = new Set<string>();

  /** Checks `header` against the entries seen so far and records it. Throws UnsafePathError or IntegrityError. */
  add(header: EntryHeader): void {
    const { path, type } = header;
    assertSafeEntryPath(path);
    const name = showPath(path);
    if (RESERVED_NAMES.has(path)) throw new IntegrityError(`archive: entry ${name}: name is reserved for the archive's own entries`);
    if (type !== 'file' && type !== 'directory' && type !== 'symlink') {
      throw new UnsafePathError(`archive: entry ${name}: unsupported entry type ${String(type)}`);
    }
    if (this.kinds.has(path)) throw new IntegrityError(`archive: entry ${name}: duplicate path`);
    if (type !== 'directory' && this.impliedDirectories.has(path)) {
      throw new IntegrityError(`archive: entry ${name}: a ${type} where earlier entries need a directory`);
    }
    if (type !== 'file' && header.size !== 0) throw new IntegrityError(`archive: entry ${name}: a ${type} with size ${header.size}`);
    if (!Number.isSafeInteger(header.size) || header.size < 0) throw new IntegrityError(`archive: entry ${name}: invalid size ${header.size}`);
    this.checkAncestors(path);
    if (type === 'symlink') assertSafeLinkTarget(path, header.linkTarget ?? '');
    this.kinds.set(path, type);
  }

  /** The type recorded for `path`, if an entry had that path. */
  typeOf(path: string): EntryType | undefined {
    return this.kinds.get(path);
  }

  private checkAncestors(path: string): void {
    for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) {
      const ancestor = path.slice(0, slash);
      const kind = this.kinds.get(ancestor);
      if (kind === 'symlink') throw new UnsafePathError(`archive: entry ${showPath(path)}: path goes through the symlink ${showPath(ancestor)}`);
      if (kind === 'file') throw new IntegrityError(`archive: entry ${showPath(path)}: path goes through the file ${showPath(ancestor)}`);
    }
    for (let slash = path.lastIndexOf('/'); slash !== -1; slash = path.lastIndexOf('/', slash - 1)) {
      const ancestor = path.slice(0, slash);
      if (this.impliedDirectories.has(ancestor)) break; // its own ancestors were recorded with it
      this.impliedDirectories.add(ancestor);
      if (slash === 0) break;
    }
  }
}
