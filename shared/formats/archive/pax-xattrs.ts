import { IntegrityError } from '../../errors.js';
import { encodePaxRecord } from './pax-record.js';
import type { Xattr } from '../../snapshot/xattr.js';

/**
 * Extended attributes travel as pax `SCHILY.xattr.<name>=<value>` records, the keyword GNU tar
 * (`--xattrs`), star and libarchive (bsdtar) all write and read. The value is the raw bytes (a
 * pax record is length-delimited, so NULs and non-UTF-8 bytes are fine, as GNU tar writes
 * them). In the name, `%` and `=` are written `%25` and `%3D`, as GNU tar's
 * `xattr_encode_keyword` does, since the first `=` ends a pax keyword.
 */
const PREFIX = 'SCHILY.xattr.';

/** Longest value accepted (Linux's XATTR_SIZE_MAX): also bounds what a reader holds per entry. */
export const MAX_XATTR_VALUE_BYTES = 64 * 1024;

/** The encoded records for `xattrs`, in the order given. */
export function encodeXattrRecords(xattrs: readonly Xattr[]): Buffer {
  return Buffer.concat(xattrs.map(({ name, value }) => encodePaxRecord(PREFIX + encodeName(name), value)));
}

/**
 * The extended attributes among an entry's pax records, or undefined when there are none.
 *
 * @throws IntegrityError for an empty name or a value over MAX_XATTR_VALUE_BYTES.
 */
export function xattrsFromPax(records: ReadonlyMap<string, Buffer> | undefined, entryName: string): Xattr[] | undefined {
  if (!records) return undefined;
  let xattrs: Xattr[] | undefined;
  for (const [key, value] of records) {
    if (!key.startsWith(PREFIX)) continue;
    const name = decodeName(key.slice(PREFIX.length));
    if (name === '' || value.length > MAX_XATTR_VALUE_BYTES) {
      throw new IntegrityError(`archive: entry ${entryName}: invalid extended attribute record ${JSON.stringify(key.slice(0, 80))}`);
    }
    (xattrs ??= []).push({ name, value: Buffer.from(value) });
  }
  return xattrs;
}

function encodeName(name: string): string {
  return name.replace(/[%=]/g, (c) => (c === '%' ? '%25' : '%3D'));
}

function decodeName(keyword: string): string {
  return keyword.replace(/%25|%3D/g, (code) => (code === '%25' ? '%' : '='));
}
