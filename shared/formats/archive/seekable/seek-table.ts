import { IntegrityError } from '../../../errors.js';

/*
 * The zstd seekable format's seek table (facebook/zstd,
 * contrib/seekable_format/zstd_seekable_compression_format.md, version 0.1.0): a skippable
 * frame after the last data frame, so a stock `zstd -d` skips it, holding one entry per frame
 * and a footer at the very end of the stream:
 *
 *   Skippable_Magic_Number  u32 LE  0x184D2A5E
 *   Frame_Size              u32 LE  bytes that follow (entries + 9-byte footer)
 *   Seek_Table_Entries      per frame: Compressed_Size u32 LE, Decompressed_Size u32 LE
 *                           (and Checksum u32 LE when the descriptor's bit 7 is set)
 *   Number_Of_Frames        u32 LE
 *   Seek_Table_Descriptor   u8 (bit 7: checksums present; bits 2-6 reserved, must be 0)
 *   Seekable_Magic_Number   u32 LE  0x8F92EAB1
 *
 * We write no per-frame checksums (every frame carries zstd's own content checksum, and the
 * entry index holds each file's SHA-256) but read tables that have them.
 */

const SKIPPABLE_MAGIC = 0x184d2a5e;
const SEEKABLE_MAGIC = 0x8f92eab1;
const SKIPPABLE_HEADER_BYTES = 8;
export const SEEK_TABLE_FOOTER_BYTES = 9;
const CHECKSUM_FLAG = 0x80;
const RESERVED_BITS = 0x7c;
/** The spec's limits: at most 2^27 frames, each at most 1 GiB decompressed. */
const MAX_FRAMES = 0x8000000;
const MAX_FRAME_DECOMPRESSED = 0x40000000;

/** One data frame: its compressed and decompressed sizes in bytes. */
export interface SeekFrame {
  compressedSize: number;
  decompressedSize: number;
}

/** A seek table with the offsets each frame starts at, in the compressed and the decompressed stream. */
export interface SeekTable {
  frames: SeekFrame[];
  /** `compressedOffsets[i]`: where frame i starts in the stored object; one more entry for the end of the last frame. */
  compressedOffsets: number[];
  /** `decompressedOffsets[i]`: where frame i's bytes start in the tar stream; one more entry for the end. */
  decompressedOffsets: number[];
}

/** Bytes the seek table of `frames` frames takes (skippable header, entries, footer). */
export function seekTableBytes(frames: number): number {
  return SKIPPABLE_HEADER_BYTES + 8 * frames + SEEK_TABLE_FOOTER_BYTES;
}

/** Encodes the seek table (a skippable frame) for these frames, without per-frame checksums. */
export function encodeSeekTable(frames: readonly SeekFrame[]): Buffer {
  const out = Buffer.alloc(seekTableBytes(frames.length));
  out.writeUInt32LE(SKIPPABLE_MAGIC, 0);
  out.writeUInt32LE(out.length - SKIPPABLE_HEADER_BYTES, 4);
  let at = SKIPPABLE_HEADER_BYTES;
  for (const frame of frames) {
    out.writeUInt32LE(frame.compressedSize, at);
    out.writeUInt32LE(frame.decompressedSize, at + 4);
    at += 8;
  }
  out.writeUInt32LE(frames.length, at);
  out.writeUInt8(0, at + 4);
  out.writeUInt32LE(SEEKABLE_MAGIC, at + 5);
  return out;
}

/**
 * Decodes a whole seek table (the skippable frame, as `encodeSeekTable` writes it or with
 * checksums) and checks it against the stored object: the frames must fill exactly
 * `dataBytes` compressed bytes (the object less the table) and, when given, `tarBytes` decompressed ones.
 * @throws IntegrityError naming the first problem.
 */
export function decodeSeekTable(bytes: Buffer, dataBytes: number, tarBytes: number | undefined): SeekTable {
  const fail = (problem: string) => new IntegrityError(`archive: seek table: ${problem}`);
  if (bytes.length < SKIPPABLE_HEADER_BYTES + SEEK_TABLE_FOOTER_BYTES) throw fail(`${bytes.length} bytes, too short`);
  if (bytes.readUInt32LE(0) !== SKIPPABLE_MAGIC) throw fail('not a skippable frame');
  if (bytes.readUInt32LE(4) !== bytes.length - SKIPPABLE_HEADER_BYTES) throw fail('frame size does not match its length');
  const footer = bytes.length - SEEK_TABLE_FOOTER_BYTES;
  if (bytes.readUInt32LE(footer + 5) !== SEEKABLE_MAGIC) throw fail('no seekable magic number');
  const descriptor = bytes.readUInt8(footer + 4);
  if (descriptor & RESERVED_BITS) throw fail('reserved descriptor bits set');
  const entryBytes = descriptor & CHECKSUM_FLAG ? 12 : 8;
  const count = bytes.readUInt32LE(footer);
  if (count > MAX_FRAMES || SKIPPABLE_HEADER_BYTES + count * entryBytes !== footer) throw fail(`${count} frames do not fill ${bytes.length} bytes`);
  const frames: SeekFrame[] = [];
  const compressedOffsets = [0];
  const decompressedOffsets = [0];
  for (let i = 0, at = SKIPPABLE_HEADER_BYTES; i < count; i++, at += entryBytes) {
    const frame = { compressedSize: bytes.readUInt32LE(at), decompressedSize: bytes.readUInt32LE(at + 4) };
    if (frame.decompressedSize > MAX_FRAME_DECOMPRESSED || frame.compressedSize === 0) throw fail(`frame ${i} has impossible sizes`);
    frames.push(frame);
    compressedOffsets.push(compressedOffsets[i]! + frame.compressedSize);
    decompressedOffsets.push(decompressedOffsets[i]! + frame.decompressedSize);
  }
  if (compressedOffsets[count] !== dataBytes) throw fail(`frames hold ${compressedOffsets[count]} compressed bytes, the archive ${dataBytes}`);
  if (tarBytes !== undefined && decompressedOffsets[count] !== tarBytes) throw fail(`frames hold ${decompressedOffsets[count]} tar bytes, the entry index says ${tarBytes}`);
  return { frames, compressedOffsets, decompressedOffsets };
}

/**
 * The frames that hold tar bytes `[start, end)`: the first and one past the last index.
 * `table.decompressedOffsets` is sorted, so a binary search finds each end.
 */
export function framesCovering(table: SeekTable, start: number, end: number): { first: number; last: number } {
  const offsets = table.decompressedOffsets;
  const frameOf = (at: number) => {
    let low = 0;
    let high = table.frames.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (offsets[mid]! <= at) low = mid;
      else high = mid - 1;
    }
    return low;
  };
  return { first: frameOf(start), last: frameOf(Math.max(start, end - 1)) + 1 };
}
