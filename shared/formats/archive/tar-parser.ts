import { IntegrityError } from '../../errors.js';
import { decodeName } from '../../fsutil/byte-name.js';
import { parsePaxRecords } from './pax-record.js';

/**
 * A streaming tar reader for the archives this format writes and for what GNU tar and bsdtar
 * write of the same trees: ustar headers (name split over `prefix` and `name`), GNU headers,
 * pax `x` headers (POSIX.1-2001: `path`, `linkpath`, `size` and every other record kept as raw
 * bytes), pax `g` global headers (merged under later `x` records, as tar-stream did), GNU long
 * names (`L`, `K`) and base-256 numbers. Header layout as POSIX.1-1988 ustar (pax(1),
 * "ustar Interchange Format"). Replaces tar-stream's extract: no stream or event per entry, and
 * a body already in the buffered input is handed over as one slice of it.
 *
 * Archives are untrusted input: header checksums are checked, sizes must be non-negative safe
 * integers, pax headers and GNU long names are bounded (`MAX_PAX_HEADER_BYTES`,
 * `MAX_LONG_NAME_BYTES`), and input that ends inside a header or body is a `TarTruncatedError`.
 * Memory: the input chunk being read, plus one pax header or body the caller asks for whole.
 */

/** Largest pax extended header accepted (tar-stream's limit too; extended attributes live there). */
export const MAX_PAX_HEADER_BYTES = 4 * 1024 * 1024;
/** Largest GNU long name or link name accepted (Linux paths are at most 4096 bytes). */
export const MAX_LONG_NAME_BYTES = 64 * 1024;

export const TAR_BLOCK = 512;

/** The input ended inside a header, a pax record block or a body. */
export class TarTruncatedError extends IntegrityError {
  constructor() {
    super('archive: tar data ends early');
    this.name = 'TarTruncatedError';
  }
}

/** A header block that is not a tar header (bad checksum, unknown magic, bad number), or an oversized extended header. */
export class TarHeaderError extends IntegrityError {
  constructor(readonly detail: string) {
    super(`archive: corrupt tar header: ${detail}`);
    this.name = 'TarHeaderError';
  }
}

/** One entry's header, with the extended headers before it applied. */
export interface TarEntry {
  /** The type flag's character (`0` for a NUL flag; `5` for an old-style `name/` file). */
  typeflag: string;
  /** Path in the lossless string form of `byte-name.ts` (pax `path`, GNU long name, or ustar prefix/name). */
  name: string;
  /** Link target in the same form; '' when none. */
  linkname: string;
  /** Mode bits as stored (callers mask them). */
  mode: number;
  /** Bytes of body in the tar stream (the pax `size` when given). */
  size: number;
  /** The header's mtime in whole seconds (the pax `mtime` record, when present, is more exact). */
  mtimeSeconds: number;
  devMajor: number;
  devMinor: number;
  /** The pax records (values as raw bytes), global ones included; undefined without any. */
  pax: ReadonlyMap<string, Buffer> | undefined;
  /** Offset in the tar stream of the body's first byte (just after the header blocks). */
  dataOffset: number;
}

/** Gives the next input chunk, or null at the end of input. */
export type PullChunk = () => Promise<Buffer | null>;

const EMPTY = Buffer.alloc(0);
const PAX = 'x';
const PAX_GLOBAL = 'g';
const GNU_LONG_NAME = 'L';
const GNU_LONG_LINK = 'K';

export class TarParser {
  private chunk: Buffer = EMPTY;
  private pos = 0;
  /** Tar offset of `chunk[pos]`. */
  private offset = 0;
  /** Body bytes of the current entry not yet read, and the padding after them. */
  private bodyLeft = 0;
  private padding = 0;
  private globalPax: Map<string, Buffer> | undefined;

  constructor(private readonly pull: PullChunk) {}

  /** Bytes of tar consumed so far. */
  get position(): number {
    return this.offset;
  }

  /** Body bytes of the current entry not read yet. */
  get remaining(): number {
    return this.bodyLeft;
  }

  /**
   * The next entry, after skipping what is left of the current one's body; null at a clean end of
   * input. Zero blocks (the end-of-archive marker) are skipped, as tar-stream did: what follows
   * them is the caller's to judge from the offsets.
   * @throws TarHeaderError, TarTruncatedError, IntegrityError for a malformed pax header.
   */
  async next(): Promise<TarEntry | null> {
    await this.skip(this.bodyLeft + this.padding);
    this.bodyLeft = this.padding = 0;
    let pax: Map<string, Buffer> | undefined;
    let longName: Buffer | undefined;
    let longLink: Buffer | undefined;
    for (;;) {
      const block = await this.readExact(TAR_BLOCK, true);
      if (block === null) {
        if (pax || longName || longLink) throw new TarTruncatedError();
        return null;
      }
      const header = decodeHeaderBlock(block);
      if (header === null) continue;
      const { typeflag, size } = header;
      if (typeflag === PAX || typeflag === PAX_GLOBAL) {
        if (size > MAX_PAX_HEADER_BYTES) throw new TarHeaderError(`pax header of ${size} bytes, more than ${MAX_PAX_HEADER_BYTES}`);
        const records = parsePaxRecords(await this.readMeta(size));
        if (typeflag === PAX_GLOBAL) this.globalPax = new Map([...(this.globalPax ?? []), ...records]);
        else pax = records;
        continue;
      }
      if (typeflag === GNU_LONG_NAME || typeflag === GNU_LONG_LINK) {
        if (size > MAX_LONG_NAME_BYTES) throw new TarHeaderError(`GNU long name of ${size} bytes, more than ${MAX_LONG_NAME_BYTES}`);
        const bytes = cString(await this.readMeta(size), 0, size);
        if (typeflag === GNU_LONG_NAME) longName = bytes;
        else longLink = bytes;
        continue;
      }
      const records = this.globalPax ? new Map([...this.globalPax, ...(pax ?? [])]) : pax;
      const entry = this.entryOf(block, header, records, longName, longLink);
      this.bodyLeft = entry.size;
      this.padding = paddingOf(entry.size);
      return entry;
    }
  }

  /**
   * The whole rest of the current body when the buffered input already holds it (no copy: a
   * slice of the input chunk), else undefined. Synchronous: the common small file costs no await.
   */
  takeBuffered(): Buffer | undefined {
    if (this.chunk.length - this.pos < this.bodyLeft) return undefined;
    const body = this.chunk.subarray(this.pos, this.pos + this.bodyLeft);
    this.advance(this.bodyLeft);
    this.bodyLeft = 0;
    return body;
  }

  /** The whole rest of the current body as one buffer (the caller bounds its size first). @throws TarTruncatedError */
  async readBody(): Promise<Buffer> {
    const body = this.takeBuffered() ?? (await this.readExact(this.bodyLeft, false))!;
    this.bodyLeft = 0;
    return body;
  }

  /** The next piece of the current body (a slice of an input chunk), or null once it is all read. @throws TarTruncatedError */
  async bodyChunk(): Promise<Buffer | null> {
    if (this.bodyLeft === 0) return null;
    if (this.pos === this.chunk.length && !(await this.fill())) throw new TarTruncatedError();
    const length = Math.min(this.bodyLeft, this.chunk.length - this.pos);
    const piece = this.chunk.subarray(this.pos, this.pos + length);
    this.advance(length);
    this.bodyLeft -= length;
    return piece;
  }

  /** The rest of the current body as an async iterator of pieces (see `bodyChunk`). */
  bodyChunks(): AsyncIterator<Buffer> {
    return {
      next: async () => {
        const value = await this.bodyChunk();
        return value === null ? { done: true, value: undefined } : { done: false, value };
      },
    };
  }

  private entryOf(block: Buffer, header: HeaderFields, pax: ReadonlyMap<string, Buffer> | undefined, longName?: Buffer, longLink?: Buffer): TarEntry {
    let nameBytes = longName ?? ustarName(block);
    const paxPath = pax?.get('path');
    if (paxPath) nameBytes = paxPath;
    let linkBytes = longLink ?? cString(block, 157, 100);
    const paxLink = pax?.get('linkpath');
    if (paxLink) linkBytes = paxLink;
    let size = header.size;
    const paxSize = pax?.get('size');
    if (paxSize) {
      const text = paxSize.toString('latin1');
      size = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
      if (!Number.isSafeInteger(size)) throw new TarHeaderError(`pax size ${JSON.stringify(text.slice(0, 40))} is not a byte count`);
    }
    let typeflag = header.typeflag;
    // Old tars mark directories by a trailing slash on a regular-file header.
    if (typeflag === '0' && nameBytes.length > 0 && nameBytes[nameBytes.length - 1] === 0x2f) typeflag = '5';
    return {
      typeflag,
      name: decodeName(nameBytes),
      linkname: linkBytes.length === 0 ? '' : decodeName(linkBytes),
      mode: header.mode,
      size,
      mtimeSeconds: header.mtime,
      devMajor: readNumber(block, 329, 8, 'devmajor'),
      devMinor: readNumber(block, 337, 8, 'devminor'),
      pax,
      dataOffset: this.offset,
    };
  }

  /**
   * The body of a pax header or GNU long name, and its padding. Copied: pax values (extended
   * attributes) may be kept for the whole restore, and a slice would keep its 1 MiB input chunk.
   */
  private async readMeta(size: number): Promise<Buffer> {
    const bytes = Buffer.from((await this.readExact(size, false))!);
    await this.skip(paddingOf(size));
    return bytes;
  }

  /**
   * Exactly `size` bytes (a slice when the current chunk holds them, else a copy). At the end of
   * input: null when `mayEnd` and nothing of them was there, else TarTruncatedError.
   */
  private async readExact(size: number, mayEnd: boolean): Promise<Buffer | null> {
    if (this.chunk.length - this.pos >= size) {
      const bytes = this.chunk.subarray(this.pos, this.pos + size);
      this.advance(size);
      return bytes;
    }
    const out = Buffer.allocUnsafe(size);
    let filled = 0;
    while (filled < size) {
      if (this.pos === this.chunk.length && !(await this.fill())) {
        if (mayEnd && filled === 0) return null;
        throw new TarTruncatedError();
      }
      const length = Math.min(size - filled, this.chunk.length - this.pos);
      this.chunk.copy(out, filled, this.pos, this.pos + length);
      this.advance(length);
      filled += length;
    }
    return out;
  }

  private async skip(bytes: number): Promise<void> {
    let left = bytes;
    while (left > 0) {
      if (this.pos === this.chunk.length && !(await this.fill())) throw new TarTruncatedError();
      const length = Math.min(left, this.chunk.length - this.pos);
      this.advance(length);
      left -= length;
    }
  }

  private advance(bytes: number): void {
    this.pos += bytes;
    this.offset += bytes;
  }

  /** Replaces the used-up chunk with the next non-empty one; false at the end of input. */
  private async fill(): Promise<boolean> {
    for (;;) {
      const next = await this.pull();
      if (next === null) return false;
      if (next.length === 0) continue;
      this.chunk = next;
      this.pos = 0;
      return true;
    }
  }
}

interface HeaderFields {
  typeflag: string;
  mode: number;
  size: number;
  mtime: number;
}

const USTAR_MAGIC = Buffer.from('ustar\u0000', 'latin1');
const GNU_MAGIC = Buffer.from('ustar ', 'latin1');

/**
 * Decodes the fixed fields of a header block; null for an all-zero block.
 * @throws TarHeaderError for a bad checksum, an unknown magic, a malformed or negative number.
 */
export function decodeHeaderBlock(block: Buffer): HeaderFields | null {
  let sum = 8 * 0x20; // the checksum field counts as spaces
  for (let i = 0; i < 148; i++) sum += block[i]!;
  for (let i = 156; i < TAR_BLOCK; i++) sum += block[i]!;
  if (sum === 8 * 0x20 && isZero(block, 148, 156)) return null;
  const stored = readNumber(block, 148, 8, 'checksum');
  if (stored !== sum && stored !== signedChecksum(block)) throw new TarHeaderError('checksum mismatch');
  const ustar = block.compare(USTAR_MAGIC, 0, 6, 257, 263) === 0;
  const gnu = block.compare(GNU_MAGIC, 0, 6, 257, 263) === 0;
  if (!ustar && !gnu) throw new TarHeaderError('unknown format (no ustar magic)');
  const size = readNumber(block, 124, 12, 'size');
  if (size < 0) throw new TarHeaderError(`negative size ${size}`);
  const flag = block[156]!;
  return {
    typeflag: flag === 0 ? '0' : String.fromCharCode(flag),
    mode: readNumber(block, 100, 8, 'mode'),
    size,
    mtime: readNumber(block, 136, 12, 'mtime'),
  };
}

/** Old tars summed the bytes as signed chars; POSIX readers accept both. */
function signedChecksum(block: Buffer): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < TAR_BLOCK; i++) if (i < 148 || i >= 156) sum += (block[i]! << 24) >> 24;
  return sum;
}

/**
 * A numeric field: octal digits (leading spaces or NULs, ended by a space or NUL), or GNU's
 * base-256 (first byte 0x80 positive, 0xff negative, two's complement).
 * @throws TarHeaderError when it is neither, or does not fit a safe integer.
 */
function readNumber(block: Buffer, offset: number, length: number, field: string): number {
  const first = block[offset]!;
  if (first === 0x80 || first === 0xff) {
    // Starting a negative number at -1 (the 0xff byte as a signed byte) yields two's complement.
    let value = first === 0xff ? -1 : 0;
    for (let i = offset + 1; i < offset + length; i++) value = value * 256 + block[i]!;
    if (!Number.isSafeInteger(value)) throw new TarHeaderError(`${field} does not fit a safe integer`);
    return value;
  }
  let i = offset;
  const end = offset + length;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  let value = 0;
  let digits = 0;
  for (; i < end; i++) {
    const byte = block[i]!;
    if (byte === 0x20 || byte === 0) break;
    if (byte < 0x30 || byte > 0x37) throw new TarHeaderError(`${field} is not an octal number`);
    value = value * 8 + (byte - 0x30);
    digits++;
  }
  if (digits > 0 && !Number.isSafeInteger(value)) throw new TarHeaderError(`${field} does not fit a safe integer`);
  return value;
}

/** Name bytes of a ustar block: `prefix/name` when a prefix is set (ustar magic only). */
function ustarName(block: Buffer): Buffer {
  const name = cString(block, 0, 100);
  if (block[257 + 5] !== 0 || block[345] === 0) return name;
  return Buffer.concat([cString(block, 345, 155), SLASH, name]);
}

const SLASH = Buffer.from('/');

/** Bytes of a NUL-terminated field (all of it when no NUL). */
function cString(block: Buffer, offset: number, length: number): Buffer {
  const nul = block.indexOf(0, offset);
  const end = nul === -1 || nul > offset + length ? offset + length : nul;
  return block.subarray(offset, end);
}

function isZero(block: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (block[i] !== 0) return false;
  return true;
}

function paddingOf(size: number): number {
  const rest = size % TAR_BLOCK;
  return rest === 0 ? 0 : TAR_BLOCK - rest;
}
