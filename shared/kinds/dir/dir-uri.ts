import path from 'node:path';
import { InvalidInputError } from '../../errors.js';
import { decodeUriPath } from '../uri-path.js';

/**
 * The absolute path named by the single `dir:///abs/path` URI of a source or target.
 * Percent-escapes are decoded (`dir:///srv/my%20app` is `/srv/my app`; the path must be UTF-8, see
 * `decodeUriPath`); a trailing slash is dropped.
 *
 * @param role whether the path is a source root or a restore target (messages say `dir source`/`dir target`).
 * @throws InvalidInputError unless there is exactly one URI, its scheme is `dir:`, it has no host,
 *   query or fragment, and its path is UTF-8, absolute and normalised (no `.`/`..` segments, no `//`).
 */
export function dirPathFromUris(uris: readonly URL[], role: 'source' | 'target'): string {
  const what = `dir ${role}`;
  if (uris.length !== 1) {
    throw new InvalidInputError(`${what}: expected exactly one dir:// URI, got ${uris.length}`);
  }
  const uri = uris[0]!;
  if (uri.protocol !== 'dir:') throw new InvalidInputError(`${what}: ${uri.href} is not a dir:// URI`);
  if (uri.host !== '' || uri.search !== '' || uri.hash !== '') {
    throw new InvalidInputError(`${what}: ${uri.href} must be dir:///absolute/path (no host, query or fragment)`);
  }
  const decoded = decodeUriPath(uri, what, role);
  const trimmed = decoded.length > 1 && decoded.endsWith('/') ? decoded.slice(0, -1) : decoded;
  if (!path.posix.isAbsolute(trimmed) || path.posix.normalize(trimmed) !== trimmed || trimmed.includes('\0')) {
    throw new InvalidInputError(`${what}: ${uri.href} must name an absolute, normalised path`);
  }
  return trimmed;
}

/** The `dir:///...` URI of an absolute path, each segment percent-encoded (inverse of `dirPathFromUris`). */
export function dirUri(absPath: string): URL {
  return new URL(`dir://${absPath.split('/').map(encodeURIComponent).join('/')}`);
}
