import type { EntryType } from './archive-entry.js';
import { recordLength } from './pax-record.js';

/** What one tar header holds (ownership is never written: uid/gid 0, no user or group names). */
export interface TarHeaderFields {
  name: string;
  type: EntryType;
  /** Permission bits (masked with 0o7777). */
  mode: number;
  /** Milliseconds since the epoch; ustar keeps whole seconds, `paxMtime` the rest. */
  mtimeMs: number;
  /** Body bytes (0 for directories and symlinks). */
  size: number;
  linkname?: string;
  /** Value of a pax `mtime` record (seconds with a fraction), when the time has milliseconds. */
  paxMtime?: string;
  /**
   * Further pax records, already encoded (see pax-record.ts), appended after `path`, `linkpath`
   * and `mtime`: sparse-file and extended-attribute records. Forces a pax header.
   */
  extraPax?: Buffer;
}

export const TAR_BLOCK_BYTES = 512;
/** Two zero blocks end a tar stream. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * TAR_BLOCK_BYTES);

const TYPE_FLAGS: Record<EntryType | 'pax-header', number> = { file: 0, symlink: 2, directory: 5, 'pax-header': 72 };
const ZERO = 0x30;
const USTAR_MAGIC = Buffer.from('ustar\u000000', 'latin1');

/**
 * Encodes tar headers exactly as tar-stream's `pack` did (ustar; a pax `x` header carrying
 * `path`, `linkpath` and `mtime` when a name does not fit ustar, is not ASCII, or there is a
 * sub-second mtime), so archives stay byte-identical while skipping tar-stream's per-entry
 * stream objects, which dominated the writer's profile for trees of small files.
 *
 * Returns the header bytes to write before the entry's body: 512 bytes, or 1536+ with a pax
 * header. Sizes too large for 11 octal digits use base-256, like tar-stream and GNU tar.
 */
export function encodeTarHeader(fields: TarHeaderFields): Buffer {
  if (fields.paxMtime === undefined && fields.extraPax === undefined) {
    const plain = encodeUstar(fields.name, fields.type, fields.mode, fields.mtimeMs, fields.size, fields.linkname);
    if (plain) return plain;
  }
  let records = '';
  records += paxRecord('path', fields.name);
  if (fields.linkname) records += paxRecord('linkpath', fields.linkname);
  if (fields.paxMtime !== undefined) records += paxRecord('mtime', fields.paxMtime);
  const pax = fields.extraPax ? Buffer.concat([Buffer.from(records), fields.extraPax]) : Buffer.from(records);
  const paxHeader = encodeUstar('PaxHeader', 'pax-header', fields.mode, fields.mtimeMs, pax.length, fields.linkname && 'PaxHeader')!;
  const entryHeader = encodeUstar('PaxHeader', fields.type, fields.mode, fields.mtimeMs, fields.size, fields.linkname && 'PaxHeader')!;
  const padding = paddingFor(pax.length);
  return Buffer.concat([paxHeader, pax, Buffer.alloc(padding), entryHeader], 2 * TAR_BLOCK_BYTES + pax.length + padding);
}

/** Zero bytes that pad a body of `size` bytes to a whole block. */
export function paddingFor(size: number): number {
  const rest = size % TAR_BLOCK_BYTES;
  return rest === 0 ? 0 : TAR_BLOCK_BYTES - rest;
}

/** A ustar header block, or null when the name or link name does not fit (or is not ASCII). */
function encodeUstar(
  fullName: string,
  type: EntryType | 'pax-header',
  mode: number,
  mtimeMs: number,
  size: number,
  linkname: string | undefined,
): Buffer | null {
  // No trailing `/` on directory names: tar-stream never added one (its check looked at a
  // `typeflag` field it is not given), and readers go by the type flag.
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
  if (linkname && Buffer.byteLength(linkname) > 100) return null;

  const block = Buffer.alloc(TAR_BLOCK_BYTES);
  block.write(name, 0, 'latin1');
  block.write(octal(mode & 0o7777, 6), 100, 'latin1');
  block.write(octal(0, 6), 108, 'latin1');
  block.write(octal(0, 6), 116, 'latin1');
  writeSize(block, size, 124);
  block.write(octal((mtimeMs / 1000) | 0, 11), 136, 'latin1');
  block[156] = ZERO + TYPE_FLAGS[type];
  if (linkname) block.write(linkname, 157);
  USTAR_MAGIC.copy(block, 257);
  block.write(octal(0, 6), 329, 'latin1');
  block.write(octal(0, 6), 337, 'latin1');
  if (prefix) block.write(prefix, 345, 'latin1');
  block.write(octal(checksum(block), 6), 148, 'latin1');
  return block;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function octal(value: number, digits: number): string {
  const text = value.toString(8);
  if (text.length > digits) return `${'7'.repeat(digits)} `;
  return `${'0'.repeat(digits - text.length)}${text} `;
}

function writeSize(block: Buffer, size: number, offset: number): void {
  if (size.toString(8).length <= 11) {
    block.write(octal(size, 11), offset, 'latin1');
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

/** `<length> <key>=<value>\n`, where the length counts itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  return `${recordLength(Buffer.byteLength(body))}${body}`;
}
