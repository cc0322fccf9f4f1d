import { createRequire } from 'node:module';
import path from 'node:path';
import { decodeName } from '../../fsutil/byte-name.js';
import { parsePaxRecords } from './pax-record.js';

/**
 * Makes tar-stream keep the bytes of pax `path` and `linkpath` records. Its own `decodePax`
 * decodes every record as UTF-8, which turns each byte of a non-UTF-8 name into U+FFFD (two
 * different names become the same one). tar-stream has no option for this, so its parser is
 * replaced, once, by one that differs only there: names come out in the lossless string form of
 * `byte-name.ts` (plain text for UTF-8 names), whatever `hdrcharset` says; other records as UTF-8,
 * and every record's bytes are kept for `paxRecordsOf` (extended attributes, sparse names).
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
const RAW_RECORDS = Symbol('raw pax records');

/**
 * Decodes one pax header the way tar-stream's `header.pax` is used (names in the lossless form,
 * other values as UTF-8 text), and keeps every record's raw bytes beside it for `paxRecordsOf`:
 * binary values (extended attributes, sparse names) need them. A malformed header is an
 * IntegrityError (see `parsePaxRecords`).
 */
function decodePaxKeepingNames(buf: Buffer): Record<string, string> {
  const records = parsePaxRecords(buf);
  const result: Record<string, string> = {};
  for (const [key, value] of records) result[key] = NAME_KEYS.has(key) ? decodeName(value) : value.toString('utf8');
  Object.defineProperty(result, RAW_RECORDS, { value: records });
  return result;
}

/** The raw records of an entry's pax header (values as bytes), when it had one. */
export function paxRecordsOf(header: { pax?: unknown }): ReadonlyMap<string, Buffer> | undefined {
  return (header.pax as { [RAW_RECORDS]?: Map<string, Buffer> } | undefined)?.[RAW_RECORDS];
}
