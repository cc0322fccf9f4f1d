import { InvalidInputError } from '../errors.js';

/**
 * The filesystem path of a `dir:` or `sqlite:` URI: its pathname with percent-escapes decoded
 * (`/srv/my%20app` is `/srv/my app`).
 *
 * A root or target path must be valid UTF-8. Names inside a tree may be any bytes (they are kept
 * as bytes, see `fsutil/byte-name.ts`), but the root is also a job field, a lineage name, a log
 * field and a path checked against the allowed ones, all of them text; a command line cannot pass
 * such bytes either (Node turns them into U+FFFD before we see them).
 * @param what names the endpoint in messages (`dir source`, `sqlite target`).
 * @param role for a target, a path holding U+FFFD is refused too: it is almost surely a name
 *   whose bytes were replaced on the way, and restoring would create a file of another name.
 * @throws InvalidInputError for a malformed escape, escapes that decode to bytes that are not
 *   UTF-8, or (targets) a path holding U+FFFD.
 */
export function decodeUriPath(uri: URL, what: string, role: 'source' | 'target'): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(uri.pathname);
  } catch (cause) {
    if (/^(?:[^%]|%[0-9A-Fa-f]{2})*$/.test(uri.pathname)) {
      throw new InvalidInputError(
        `${what}: ${uri.href} names a path that is not valid UTF-8; a source root or target must be a UTF-8 path (names inside a directory tree may be any bytes)`,
        { cause },
      );
    }
    throw new InvalidInputError(`${what}: ${uri.href} has a malformed percent-escape`, { cause });
  }
  if (role === 'target' && decoded.includes('\uFFFD')) {
    throw new InvalidInputError(
      `${what}: ${uri.href} holds U+FFFD, the mark of a name whose bytes were not UTF-8 and were replaced on the way; refused, since the restore would create a file of another name`,
    );
  }
  return decoded;
}

/**
 * A hint for a path that was not found and holds U+FFFD: most likely a name that is not UTF-8,
 * replaced by the command line (or the producer) before it reached us. Empty otherwise.
 */
export function replacedBytesHint(filePath: string): string {
  return filePath.includes('\uFFFD')
    ? ' (its name holds U+FFFD: if the real name is not valid UTF-8, it cannot be given as a source root or target; only names inside a tree may be any bytes)'
    : '';
}
