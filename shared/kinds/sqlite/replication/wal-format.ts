/**
 * SQLite's WAL file format, as far as replication needs it (https://www.sqlite.org/fileformat2.html,
 * "The Write-Ahead Log"; the checksum is `walChecksumBytes` in SQLite's `wal.c`).
 *
 * A WAL is a 32-byte header, then frames of a 24-byte frame header plus one page. All integers are
 * big-endian. Every frame carries the header's two salts and a running checksum over the header
 * and every frame before it, so a reader can tell the frames of the current WAL from stale ones
 * left over from before the WAL was restarted (other salts) and from a torn write (bad checksum).
 */

export const WAL_HEADER_SIZE = 32;
export const WAL_FRAME_HEADER_SIZE = 24;
const MAGIC_LITTLE_ENDIAN = 0x377f0682;
const MAGIC_BIG_ENDIAN = 0x377f0683;

/** The two running checksum words. */
export type WalChecksum = readonly [number, number];

export interface WalHeader {
  /** Whether the checksum reads the data as big-endian 32-bit words (magic 0x377f0683). */
  bigEndianChecksum: boolean;
  pageSize: number;
  checkpointSequence: number;
  salt1: number;
  salt2: number;
  /** Checksum over the header's first 24 bytes; the chain every frame continues. */
  checksum: WalChecksum;
}

export interface WalFrameHeader {
  pageNumber: number;
  /** For a commit frame, the database size in pages after the commit; 0 for other frames. */
  commitSize: number;
  salt1: number;
  salt2: number;
  checksum: WalChecksum;
}

/** Parses and checks a WAL header; undefined when `bytes` is not a valid one (short, bad magic or checksum). */
export function parseWalHeader(bytes: Buffer): WalHeader | undefined {
  if (bytes.length < WAL_HEADER_SIZE) return undefined;
  const magic = bytes.readUInt32BE(0);
  if (magic !== MAGIC_LITTLE_ENDIAN && magic !== MAGIC_BIG_ENDIAN) return undefined;
  const bigEndianChecksum = magic === MAGIC_BIG_ENDIAN;
  const stored: WalChecksum = [bytes.readUInt32BE(24), bytes.readUInt32BE(28)];
  const computed = walChecksum(bytes.subarray(0, 24), [0, 0], bigEndianChecksum);
  if (!sameChecksum(stored, computed)) return undefined;
  const pageSize = bytes.readUInt32BE(8);
  return {
    bigEndianChecksum,
    // 65536 does not fit the on-disk 16-bit field of the database header, but does here.
    pageSize,
    checkpointSequence: bytes.readUInt32BE(12),
    salt1: bytes.readUInt32BE(16),
    salt2: bytes.readUInt32BE(20),
    checksum: stored,
  };
}

export function parseFrameHeader(bytes: Buffer): WalFrameHeader {
  return {
    pageNumber: bytes.readUInt32BE(0),
    commitSize: bytes.readUInt32BE(4),
    salt1: bytes.readUInt32BE(8),
    salt2: bytes.readUInt32BE(12),
    checksum: [bytes.readUInt32BE(16), bytes.readUInt32BE(20)],
  };
}

/**
 * Checks one frame (`frame` = frame header + page) against the chain: same salts as the WAL,
 * checksum continuing from `previous`. Returns the frame's header when it belongs, else undefined.
 */
export function checkFrame(
  frame: Buffer,
  salts: { salt1: number; salt2: number },
  previous: WalChecksum,
  bigEndianChecksum: boolean,
): WalFrameHeader | undefined {
  const header = parseFrameHeader(frame);
  if (header.salt1 !== salts.salt1 || header.salt2 !== salts.salt2) return undefined;
  let sum = walChecksum(frame.subarray(0, 8), previous, bigEndianChecksum);
  sum = walChecksum(frame.subarray(WAL_FRAME_HEADER_SIZE), sum, bigEndianChecksum);
  return sameChecksum(sum, header.checksum) ? header : undefined;
}

/** SQLite's WAL checksum over `data` (a multiple of 8 bytes), continuing from `start`. */
export function walChecksum(data: Buffer, start: WalChecksum, bigEndian: boolean): WalChecksum {
  let s1 = start[0];
  let s2 = start[1];
  for (let i = 0; i < data.length; i += 8) {
    const x0 = bigEndian ? data.readUInt32BE(i) : data.readUInt32LE(i);
    const x1 = bigEndian ? data.readUInt32BE(i + 4) : data.readUInt32LE(i + 4);
    s1 = (s1 + x0 + s2) >>> 0;
    s2 = (s2 + x1 + s1) >>> 0;
  }
  return [s1, s2];
}

export function sameChecksum(a: WalChecksum, b: WalChecksum): boolean {
  return a[0] === b[0] && a[1] === b[1];
}
