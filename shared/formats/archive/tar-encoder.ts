import type { EntryType } from '../../snapshot/entry.js';
import { encodeName, hasEscapedBytes } from '../../fsutil/byte-name.js';
import { encodePaxRecord } from './pax-record.js';

/** What one tar header holds (ownership is never written: uid/gid 0, no user or group names). */
export interface TarHeaderFields {
  /** Entry path in the lossless string form of `byte-name.ts`; written as its original bytes. */
  name: string;
  type: EntryType;
  /** Permission bits (masked with 0o7777). */
  mode: number;
  /** Nanoseconds since the epoch, negative before 1970. */
  mtimeNs: bigint;
  /** Body bytes (0 for everything but files). */
  size: number;
  /** Symlink target, or the earlier entry a hard link points to (same string form as `name`). */
  linkname?: string;
  /** Character and block devices. */
  devMajor?: number;
  devMinor?: number;
  /**
   * Further pax records, already encoded (see pax-record.ts), appended after `path`, `linkpath`
   * and `mtime`: sparse-file and extended-attribute records. Forces a pax header.
   */
  extraPax?: Buffer;
}

export const TAR_BLOCK_BYTES = 512;
/** Two zero blocks end a tar stream. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * TAR_BLOCK_BYTES);

const TYPE_FLAGS: Record<EntryType | 'pax-header', number> = {
  file: 0,
  hardlink: 1,
  symlink: 2,
  chardev: 3,
  blockdev: 4,
  directory: 5,
  fifo: 6,
  'pax-header': 72,
};
const ZERO = 0x30;
const USTAR_MAGIC = Buffer.from('ustar\u000000', 'latin1');
const NS_PER_SECOND = 1_000_000_000n;
/** The largest time the 11 octal digits of a ustar header hold (year 2242); earlier than 1970 they cannot hold at all. */
const MAX_USTAR_SECONDS = 8n ** 11n - 1n;

/**
 * Encodes the header blocks of one entry: a ustar block when everything fits ustar (ASCII names
 * that fit its name and prefix fields, a whole-second mtime between 1970 and 2242), else a pax
 * `x` header (POSIX.1-2001) with `path`, `linkpath` and `mtime` records followed by the ustar block.
 * Ordinary trees' entries stay one block; the pax header costs two or more.
 *
 * Names and link targets are written as their original bytes. When one is not valid UTF-8 the
 * pax header also says `hdrcharset=BINARY`, as POSIX asks, so GNU tar and bsdtar take the bytes
 * as they are. The pax `mtime` is decimal seconds with a 9-digit fraction, negative before 1970
 * (`-1.500000000` is 1.5 s before the epoch), which is what GNU tar writes and reads (it trims
 * the zeros). Sizes too large for 11 octal digits use base-256, like GNU tar.
 */
export function encodeTarHeader(fields: TarHeaderFields): Buffer {
  const seconds = floorSeconds(fields.mtimeNs);
  const wholeSecond = fields.mtimeNs === seconds * NS_PER_SECOND && seconds >= 0n && seconds <= MAX_USTAR_SECONDS;
  if (wholeSecond && fields.extraPax === undefined) {
    const plain = encodeUstar(fields.name, fields.type, fields, seconds, fields.size, fields.linkname);
    if (plain) return plain;
  }
  const records: Buffer[] = [];
  if (hasEscapedBytes(fields.name) || (fields.linkname !== undefined && hasEscapedBytes(fields.linkname))) {
    records.push(paxRecord('hdrcharset', Buffer.from('BINARY')));
  }
  records.push(paxRecord('path', encodeName(fields.name)));
  if (fields.linkname) records.push(paxRecord('linkpath', encodeName(fields.linkname)));
  if (!wholeSecond) records.push(paxRecord('mtime', Buffer.from(paxTime(fields.mtimeNs))));
  if (fields.extraPax) records.push(fields.extraPax);
  const pax = Buffer.concat(records);
  const ustarSeconds = seconds < 0n ? 0n : seconds > MAX_USTAR_SECONDS ? MAX_USTAR_SECONDS : seconds;
  const paxLink = fields.linkname && 'PaxHeader';
  const paxHeader = encodeUstar('PaxHeader', 'pax-header', fields, ustarSeconds, pax.length, paxLink)!;
  const entryHeader = encodeUstar('PaxHeader', fields.type, fields, ustarSeconds, fields.size, paxLink)!;
  const padding = paddingFor(pax.length);
  return Buffer.concat([paxHeader, pax, Buffer.alloc(padding), entryHeader], 2 * TAR_BLOCK_BYTES + pax.length + padding);
}

/** Zero bytes that pad a body of `size` bytes to a whole block. */
export function paddingFor(size: number): number {
  const rest = size % TAR_BLOCK_BYTES;
  return rest === 0 ? 0 : TAR_BLOCK_BYTES - rest;
}

/** Seconds rounded down (BigInt division rounds toward zero, which is up for negative times). */
function floorSeconds(ns: bigint): bigint {
  const seconds = ns / NS_PER_SECOND;
  return ns < 0n && seconds * NS_PER_SECOND !== ns ? seconds - 1n : seconds;
}

/** A pax time value: `[-]seconds.nnnnnnnnn`, the exact value of `ns` nanoseconds. */
export function paxTime(ns: bigint): string {
  const negative = ns < 0n;
  const magnitude = negative ? -ns : ns;
  const fraction = (magnitude % NS_PER_SECOND).toString().padStart(9, '0');
  return `${negative ? '-' : ''}${magnitude / NS_PER_SECOND}.${fraction}`;
}

/** A ustar header block, or null when the name or link name does not fit (or is not ASCII). */
function encodeUstar(
  fullName: string,
  type: EntryType | 'pax-header',
  fields: TarHeaderFields,
  seconds: bigint,
  size: number,
  linkname: string | undefined,
): Buffer | null {
  // No trailing `/` on directory names (tar-stream never added one); readers go by the type flag.
  let name = fullName;
  if (!isAscii(name)) return null;
  let prefix = '';
  while (name.length > 100) {
    const slash = name.indexOf('/');
    if (slash === -1) return null;
    prefix += prefix ? `/${name.slice(0, slash)}` : name.slice(0, slash);
    name = name.slice(slash + 1);
  }
  if (name.length > 100 || prefix.length > 155) return null;
  if (linkname && (linkname.length > 100 || !isAscii(linkname))) return null;

  // From the shared pool (allocUnsafe), zeroed: one header per entry, so a fresh allocation each shows.
  const block = Buffer.allocUnsafe(TAR_BLOCK_BYTES).fill(0);
  block.write(name, 0, 'latin1');
  writeOctal(block, 100, fields.mode & 0o7777, 6);
  writeOctal(block, 108, 0, 6);
  writeOctal(block, 116, 0, 6);
  writeSize(block, size, 124);
  writeOctal(block, 136, Number(seconds), 11);
  block[156] = ZERO + TYPE_FLAGS[type];
  if (linkname) block.write(linkname, 157, 'latin1');
  USTAR_MAGIC.copy(block, 257);
  const device = type === 'chardev' || type === 'blockdev';
  // Seven digits and a NUL: room for Linux's 20-bit minor numbers.
  if (device) block.write(octalField(fields.devMajor ?? 0), 329, 'latin1');
  else writeOctal(block, 329, 0, 6);
  if (device) block.write(octalField(fields.devMinor ?? 0), 337, 'latin1');
  else writeOctal(block, 337, 0, 6);
  if (prefix) block.write(prefix, 345, 'latin1');
  writeOctal(block, 148, checksum(block), 6);
  return block;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * `value` as `digits` zero-padded octal digits and a space at `offset` (all 7s when it does not
 * fit), written straight into the block instead of through a string.
 */
function writeOctal(block: Buffer, offset: number, value: number, digits: number): void {
  let rest = value;
  const fits = value < 8 ** digits;
  for (let i = offset + digits - 1; i >= offset; i--) {
    block[i] = fits ? ZERO + (rest % 8) : ZERO + 7;
    rest = Math.floor(rest / 8);
  }
  block[offset + digits] = 0x20;
}

function octalField(value: number): string {
  return value.toString(8).padStart(7, '0');
}

function writeSize(block: Buffer, size: number, offset: number): void {
  if (size.toString(8).length <= 11) {
    writeOctal(block, offset, size, 11);
    return;
  }
  block[offset] = 0x80;
  for (let i = 11, rest = size; i > 0; i--, rest = Math.floor(rest / 256)) block[offset + i] = rest & 0xff;
}

function checksum(block: Buffer): number {
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += block[i]!;
  for (let i = 156; i < TAR_BLOCK_BYTES; i++) sum += block[i]!;
  return sum;
}

/** `<length> <key>=<value>\n`, where the length counts itself; the value is raw bytes. */
function paxRecord(key: string, value: Buffer): Buffer {
  return encodePaxRecord(key, value);
}
