import { IntegrityError } from '../../errors.js';

/**
 * One pax extended-header record as bytes: `<length> <key>=<value>\n`, where the decimal length
 * counts the whole record, itself included (POSIX.1-2001 `pax`, "extended header"). The value
 * is copied as raw bytes: POSIX allows any bytes in a value since the length delimits it, and
 * GNU tar and libarchive write `SCHILY.xattr.*` values and `hdrcharset=BINARY` names that way.
 */
export function encodePaxRecord(key: string, value: Buffer | string): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), typeof value === 'string' ? Buffer.from(value) : value, NEWLINE]);
  const length = recordLength(body.length);
  return Buffer.concat([Buffer.from(String(length)), body]);
}

/** The length field for a record whose text after the length is `bodyBytes` long. */
export function recordLength(bodyBytes: number): number {
  let digits = String(bodyBytes).length;
  if (bodyBytes + digits >= 10 ** digits) digits += 1;
  return bodyBytes + digits;
}

/**
 * Splits the body of a pax `x` header into records, keeping each value's raw bytes (keys are
 * ASCII in every record we read). A later record with the same key wins, as POSIX says.
 *
 * @throws IntegrityError for a malformed record (bad length, no `=`, no final newline).
 */
export function parsePaxRecords(bytes: Buffer): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let offset = 0;
  // A header padded with NULs ends at the first NUL where a length should start.
  while (offset < bytes.length && bytes[offset] !== 0) {
    const space = bytes.indexOf(0x20, offset);
    const length = space === -1 ? NaN : Number(bytes.toString('latin1', offset, space));
    const end = offset + length;
    if (!Number.isSafeInteger(length) || length <= space - offset + 1 || end > bytes.length || bytes[end - 1] !== 0x0a) {
      throw new IntegrityError(`archive: malformed pax record at byte ${offset} of an extended header`);
    }
    const equals = bytes.indexOf(0x3d, space + 1);
    if (equals === -1 || equals >= end) throw new IntegrityError(`archive: pax record without "=" at byte ${offset} of an extended header`);
    records.set(bytes.toString('utf8', space + 1, equals), bytes.subarray(equals + 1, end - 1));
    offset = end;
  }
  return records;
}

const NEWLINE = Buffer.from('\n');
