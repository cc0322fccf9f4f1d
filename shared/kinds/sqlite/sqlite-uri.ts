import path from 'node:path';
import { InvalidInputError } from '../../errors.js';
import type { EndpointContext } from '../source.js';
import { decodeUriPath } from '../uri-path.js';

/** One `sqlite:` endpoint: the URI as given (no secrets to strip) and the absolute file path. */
export interface SqliteEndpoint {
  uri: string;
  path: string;
}

/**
 * Parses `sqlite:///abs/path/db.sqlite` URIs and checks each path against the worker's allowed
 * roots. `role` (`source`, `target`) only shapes messages.
 *
 * @throws InvalidInputError for no URIs, another scheme, a host, a query or fragment, a path that
 *   is not absolute or names a directory; UnsafePathError (from `context.checkPath`) for a path
 *   outside the allowed roots.
 */
export function parseSqliteUris(uris: readonly URL[], context: EndpointContext, role: 'source' | 'target'): SqliteEndpoint[] {
  if (uris.length === 0) throw new InvalidInputError(`sqlite ${role}: no sqlite:// URI given`);
  return uris.map((url) => {
    const shown = url.href;
    if (url.protocol !== 'sqlite:') throw new InvalidInputError(`sqlite ${role}: ${shown} is not a sqlite:// URI`);
    // A host would silently be ignored by a naive parser; sqlite://data/app.db is a common typo for sqlite:///data/app.db.
    if (url.host !== '') throw new InvalidInputError(`sqlite ${role}: ${shown} has a host; write sqlite:///absolute/path (three slashes)`);
    if (url.search !== '' || url.hash !== '') throw new InvalidInputError(`sqlite ${role}: ${shown} must not carry a query or fragment`);
    let filePath = decodeUriPath(url, `sqlite ${role}`, role);
    if (!path.isAbsolute(filePath) || filePath.endsWith('/') || filePath.includes('\0')) {
      throw new InvalidInputError(`sqlite ${role}: ${shown} must name a database file by absolute path`);
    }
    filePath = path.normalize(filePath);
    context.checkPath(filePath);
    return { uri: url.href, path: filePath };
  });
}

/**
 * Archive names for the databases at `paths`: each file's basename; a basename seen before gets
 * `-2`, `-3`, ... before its extension (`app.db`, `app-2.db`), in URI order, so the same job
 * always yields the same names.
 */
export function uniqueDatabaseNames(paths: readonly string[]): string[] {
  const taken = new Set<string>();
  return paths.map((filePath) => {
    const base = path.basename(filePath);
    const ext = path.extname(base);
    const stem = base.slice(0, base.length - ext.length);
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${stem}-${n}${ext}`;
    taken.add(name);
    return name;
  });
}

/** The archive path of a database entry. */
export const DATABASE_ENTRY_PREFIX = 'databases/';

export function databaseEntryPath(name: string): string {
  return `${DATABASE_ENTRY_PREFIX}${name}`;
}
