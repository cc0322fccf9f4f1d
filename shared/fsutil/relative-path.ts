import { UnsafePathError } from '../errors.js';
import { showName } from './byte-name.js';

/**
 * Splits a relative POSIX path from an archive into its segments, refusing anything that could
 * resolve outside the directory it is joined to: absolute paths, `.`/`..` segments, empty
 * segments (`a//b`) and NUL bytes. One trailing `/` (tar's directory marker) is allowed.
 * The empty path yields no segments.
 *
 * @throws UnsafePathError naming the path.
 */
export function safePathSegments(relPath: string): string[] {
  const trimmed = relPath.endsWith('/') ? relPath.slice(0, -1) : relPath;
  if (trimmed === '') return [];
  const segments = trimmed.split('/');
  const unsafe = relPath.startsWith('/') || relPath.includes('\0') || segments.some((s) => s === '' || s === '.' || s === '..');
  if (unsafe) throw new UnsafePathError(`path ${showName(relPath)} is absolute or leaves its directory`);
  return segments;
}
