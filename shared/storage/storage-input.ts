import { InvalidInputError } from '../errors.js';

/**
 * Checks shared by every storage driver, so that a key accepted by one backend is accepted by all
 * and nothing a job passes in can reach outside the driver's root or prefix.
 */

/**
 * Throws `InvalidInputError` unless `key` is a relative, `/`-separated key without empty, `.` or
 * `..` segments, backslashes or NUL bytes.
 */
export function assertValidKey(kind: string, operation: string, key: string): void {
  const problem = keyProblem(key);
  if (problem) throw new InvalidInputError(`${kind}: ${operation} ${JSON.stringify(key)}: invalid key: ${problem}`);
}

/**
 * Throws `InvalidInputError` unless `prefix` is empty or a key prefix: the same rules as keys, except
 * that it may end with `/`.
 */
export function assertValidPrefix(kind: string, prefix: string): void {
  if (prefix === '') return;
  const problem = keyProblem(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
  if (problem) throw new InvalidInputError(`${kind}: list ${JSON.stringify(prefix)}: invalid prefix: ${problem}`);
}

/** An inclusive byte range as `GetOptions.range` carries it. */
export interface ByteRange {
  start: number;
  end?: number;
}

/** Throws `InvalidInputError` for negative, fractional or reversed ranges. */
export function assertValidRange(kind: string, key: string, range: ByteRange | undefined): void {
  if (!range) return;
  const { start, end } = range;
  const ok =
    Number.isSafeInteger(start) && start >= 0 && (end === undefined || (Number.isSafeInteger(end) && end >= start));
  if (!ok) throw new InvalidInputError(`${kind}: get ${key}: invalid range ${JSON.stringify(range)}`);
}

function keyProblem(key: string): string | undefined {
  if (typeof key !== 'string' || key === '') return 'empty';
  if (key.startsWith('/')) return 'absolute';
  if (key.includes('\\')) return 'contains a backslash';
  if (key.includes('\0')) return 'contains a NUL byte';
  for (const segment of key.split('/')) {
    if (segment === '') return 'empty path segment';
    if (segment === '.' || segment === '..') return `"${segment}" segment`;
  }
  return undefined;
}
