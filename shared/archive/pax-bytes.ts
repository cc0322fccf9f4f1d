import { createRequire } from 'node:module';
import path from 'node:path';
import { decodeName } from '../fsutil/byte-name.js';

/**
 * Makes tar-stream keep the bytes of pax `path` and `linkpath` records. Its own `decodePax`
 * decodes every record as UTF-8, which turns each byte of a non-UTF-8 name into U+FFFD (two
 * different names become the same one). tar-stream has no option for this, so its parser is
 * replaced, once, by one that differs only there: names come out in the lossless string form of
 * `byte-name.ts` (plain text for UTF-8 names), whatever `hdrcharset` says; other records as UTF-8.
 * Record syntax as POSIX.1-2001 pax: `<length> <key>=<value>\n`, the length counting itself.
 */
export function keepPaxNameBytes(): void {
  if (installed) return;
  const require = createRequire(import.meta.url);
  // The package's `exports` hide headers.js; the file itself is the module extract.js uses.
  const headersFile = path.join(path.dirname(require.resolve('tar-stream')), 'headers.js');
  const headers = require(headersFile) as { decodePax: (buf: Buffer) => Record<string, string> };
  headers.decodePax = decodePaxKeepingNames;
  installed = true;
}

let installed = false;
const NAME_KEYS = new Set(['path', 'linkpath']);

function decodePaxKeepingNames(buf: Buffer): Record<string, string> {
  const result: Record<string, string> = {};
  let rest = buf;
  while (rest.length > 0) {
    const space = rest.indexOf(0x20);
    if (space <= 0) return result;
    const length = Number.parseInt(rest.subarray(0, space).toString('latin1'), 10);
    if (!length || length > rest.length) return result;
    const record = rest.subarray(space + 1, length - 1);
    const equals = record.indexOf(0x3d);
    if (equals === -1) return result;
    const key = record.subarray(0, equals).toString('utf8');
    const value = record.subarray(equals + 1);
    result[key] = NAME_KEYS.has(key) ? decodeName(value) : value.toString('utf8');
    rest = rest.subarray(length);
  }
  return result;
}
