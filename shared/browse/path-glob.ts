import picomatch from 'picomatch';
import { InvalidInputError } from '../errors.js';

/** Where a directory snapshot's files are stored (`data/sub/file`, shown as `/sub/file`). */
const DIR_PAYLOAD = 'data/';

/**
 * A `find` pattern as a test on entry paths (restic's `find`): without `/` it matches an entry's
 * name (its last path component: `*.conf`, `app.log*`); with `/` the whole path, as stored
 * (`data/etc/**`) or, for a directory snapshot's files, as `files` and `restore --include` name
 * them (`/etc/**`, `etc/**`); a leading `/` is dropped. Picomatch globs with `dot: true`,
 * so `*` matches dot files too and never crosses a `/`.
 * @throws InvalidInputError for an empty pattern.
 */
export function pathGlob(pattern: string): (path: string) => boolean {
  if (pattern === '' || pattern === '/') throw new InvalidInputError('find: the pattern is empty');
  if (!pattern.includes('/')) {
    const isMatch = picomatch(pattern, { dot: true });
    return (path) => isMatch(path.slice(path.lastIndexOf('/') + 1));
  }
  const isMatch = picomatch(pattern.replace(/^\/+/, ''), { dot: true });
  return (path) => isMatch(path) || (path.startsWith(DIR_PAYLOAD) && isMatch(path.slice(DIR_PAYLOAD.length)));
}
