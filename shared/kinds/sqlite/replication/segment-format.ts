import { IntegrityError } from '../../../errors.js';
import { checkFrame, WAL_FRAME_HEADER_SIZE, type WalChecksum } from './wal-format.js';

/**
 * A segment object: a 36-byte header, then WAL frames exactly as SQLite wrote them.
 *
 *   0  8 bytes  magic "SWWALSG1"
 *   8  u32 BE   page size
 *  12  u32 BE   checkpoint sequence of the WAL the frames come from (SQLite counts its restarts)
 *  16  u32 BE   salt-1 of that WAL
 *  20  u32 BE   salt-2
 *  24  u32 BE   checksum-1 before the first frame (the WAL header's, or the previous frame's)
 *  28  u32 BE   checksum-2
 *  32  u32 BE   flags: bit 0 = the WAL's checksums read big-endian words (magic 0x377f0683)
 *
 * The header carries what a reader needs to check the frames on their own (salts and the running
 * checksum they continue), so a restore verifies every frame it applies and that each segment
 * starts where the one before it ended. A segment always ends with a commit frame: it holds whole
 * transactions only.
 */
export const SEGMENT_HEADER_SIZE = 36;
const MAGIC = Buffer.from('SWWALSG1', 'latin1');

export interface SegmentHeader {
  pageSize: number;
  checkpointSequence: number;
  salt1: number;
  salt2: number;
  previousChecksum: WalChecksum;
  bigEndianChecksum: boolean;
}

export function encodeSegmentHeader(header: SegmentHeader): Buffer {
  const bytes = Buffer.alloc(SEGMENT_HEADER_SIZE);
  MAGIC.copy(bytes, 0);
  bytes.writeUInt32BE(header.pageSize, 8);
  bytes.writeUInt32BE(header.checkpointSequence, 12);
  bytes.writeUInt32BE(header.salt1, 16);
  bytes.writeUInt32BE(header.salt2, 20);
  bytes.writeUInt32BE(header.previousChecksum[0], 24);
  bytes.writeUInt32BE(header.previousChecksum[1], 28);
  bytes.writeUInt32BE(header.bigEndianChecksum ? 1 : 0, 32);
  return bytes;
}

/** @throws IntegrityError when `bytes` does not start with a segment header. */
export function decodeSegmentHeader(bytes: Buffer, what: string): SegmentHeader {
  if (bytes.length < SEGMENT_HEADER_SIZE || !bytes.subarray(0, 8).equals(MAGIC)) {
    throw new IntegrityError(`${what}: not a WAL segment (bad header)`);
  }
  const pageSize = bytes.readUInt32BE(8);
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    throw new IntegrityError(`${what}: not a WAL segment (page size ${pageSize})`);
  }
  return {
    pageSize,
    checkpointSequence: bytes.readUInt32BE(12),
    salt1: bytes.readUInt32BE(16),
    salt2: bytes.readUInt32BE(20),
    previousChecksum: [bytes.readUInt32BE(24), bytes.readUInt32BE(28)],
    bigEndianChecksum: (bytes.readUInt32BE(32) & 1) === 1,
  };
}

/** One frame of a segment whose salts and checksum were checked. */
export interface CheckedFrame {
  pageNumber: number;
  commitSize: number;
  page: Buffer;
}

/**
 * The frames of a whole segment object, each checked against the chain its header starts.
 * Resolves with the frames and the checksum after the last one.
 * @throws IntegrityError on a frame that breaks the chain, a partial frame, or a last frame that
 *   is not a commit.
 */
export function checkSegmentFrames(bytes: Buffer, what: string): { header: SegmentHeader; frames: CheckedFrame[]; checksum: WalChecksum } {
  const header = decodeSegmentHeader(bytes, what);
  const frameSize = WAL_FRAME_HEADER_SIZE + header.pageSize;
  const body = bytes.subarray(SEGMENT_HEADER_SIZE);
  if (body.length === 0 || body.length % frameSize !== 0) {
    throw new IntegrityError(`${what}: ${body.length} bytes of frames is not a whole number of ${frameSize}-byte frames`);
  }
  const frames: CheckedFrame[] = [];
  let checksum = header.previousChecksum;
  for (let at = 0; at < body.length; at += frameSize) {
    const frame = body.subarray(at, at + frameSize);
    const checked = checkFrame(frame, header, checksum, header.bigEndianChecksum);
    if (!checked) throw new IntegrityError(`${what}: frame ${at / frameSize} fails its salt or checksum check`);
    frames.push({ pageNumber: checked.pageNumber, commitSize: checked.commitSize, page: frame.subarray(WAL_FRAME_HEADER_SIZE) });
    checksum = checked.checksum;
  }
  if (frames.at(-1)!.commitSize === 0) throw new IntegrityError(`${what}: does not end with a commit frame`);
  return { header, frames, checksum };
}
