import picomatch from 'picomatch';
import { InvalidInputError } from '../errors.js';

/**
 * A `find` pattern as a test on entry paths (restic's `find`): without `/` it matches an entry's
 * name (its last path component: `*.conf`, `app.log*`); with `/` the whole path as stored
 * (`data/etc/**`, `**\/logs/*.gz`; a leading `/` is dropped). Picomatch globs with `dot: true`,
 * so `*` matches dot files too and never crosses a `/`.
 * @throws InvalidInputError for an empty pattern.
 */
export function pathGlob(pattern: string): (path: string) => boolean {
  if (pattern === '' || pattern === '/') throw new InvalidInputError('find: the pattern is empty');
  if (!pattern.includes('/')) {
    const isMatch = picomatch(pattern, { dot: true });
    return (path) => isMatch(path.slice(path.lastIndexOf('/') + 1));
  }
  return picomatch(pattern.replace(/^\/+/, ''), { dot: true });
}
