import { checkFrame, parseWalHeader, WAL_FRAME_HEADER_SIZE, WAL_HEADER_SIZE, type WalChecksum, type WalHeader } from './wal-format.js';

/**
 * The reads the WAL reader needs: a `FileHandle` of `node:fs/promises` has this shape, and so has
 * `SyncWalFile` (reads under the write lock, see there).
 */
export interface WalFile {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  stat(): Promise<{ size: number }>;
}

/** Where a chain of checked frames stands: the WAL it belongs to and the checksum to continue from. */
export interface ChainPoint {
  header: WalHeader;
  /** Byte offset in the WAL file just after the last checked frame (32 right after the header). */
  offset: number;
  checksum: WalChecksum;
}

/** Committed frames read from a live WAL file. */
export interface CommittedRun {
  /** The frames, exactly as in the file, ending with a commit frame. */
  bytes: Buffer;
  /** The chain after the run's last frame. */
  end: ChainPoint;
}

/** Reads and checks the header of the WAL at `handle`; undefined when the file holds no valid header (empty, truncated). */
export async function readWalHeader(handle: WalFile): Promise<WalHeader | undefined> {
  const bytes = Buffer.alloc(WAL_HEADER_SIZE);
  const { bytesRead } = await handle.read(bytes, 0, WAL_HEADER_SIZE, 0);
  return parseWalHeader(bytes.subarray(0, bytesRead));
}

/**
 * Reads the frames after `from` that continue its chain (same salts, running checksum) and ends
 * at the last commit frame among them, so the run holds whole transactions only. Frames after the
 * last commit (a transaction being written) and anything after the first frame that breaks the
 * chain (a torn write, stale frames from before the WAL restarted) are left out.
 *
 * Reads about `maxBytes` at a time; a transaction larger than that is read whole (memory then
 * follows that transaction's size). Resolves undefined when no commit follows `from`.
 */
export async function readCommittedRun(handle: WalFile, from: ChainPoint, maxBytes: number): Promise<CommittedRun | undefined> {
  const frameSize = WAL_FRAME_HEADER_SIZE + from.header.pageSize;
  const { size } = await handle.stat();
  let limit = Math.max(frameSize, Math.floor(maxBytes / frameSize) * frameSize);
  for (;;) {
    const length = Math.min(limit, Math.floor((size - from.offset) / frameSize) * frameSize);
    if (length <= 0) return undefined;
    const bytes = Buffer.alloc(length);
    const { bytesRead } = await handle.read(bytes, 0, length, from.offset);
    const walked = walkFrames(bytes.subarray(0, bytesRead - (bytesRead % frameSize)), from, frameSize);
    if (walked.commitEnd > 0) {
      return { bytes: bytes.subarray(0, walked.commitEnd), end: { header: from.header, offset: from.offset + walked.commitEnd, checksum: walked.commitChecksum } };
    }
    // No commit yet: either the chain ended (nothing committed to ship) or one transaction is larger than `limit`.
    if (walked.broken || length < limit) return undefined;
    limit *= 2;
  }
}

/**
 * The end of the committed chain of the WAL whose header is `header`, reading `maxBytes` at a
 * time: the position a snapshot taken now corresponds to.
 */
export async function findCommittedEnd(handle: WalFile, header: WalHeader, maxBytes: number): Promise<ChainPoint> {
  let point: ChainPoint = { header, offset: WAL_HEADER_SIZE, checksum: header.checksum };
  for (;;) {
    const run = await readCommittedRun(handle, point, maxBytes);
    if (!run) return point;
    point = run.end;
  }
}

/** The checksum stored in the frame that ends at `offset`, or undefined when the file is shorter. */
export async function frameChecksumEndingAt(handle: WalFile, offset: number, pageSize: number): Promise<WalChecksum | undefined> {
  const frameHeader = Buffer.alloc(WAL_FRAME_HEADER_SIZE);
  const start = offset - WAL_FRAME_HEADER_SIZE - pageSize;
  if (start < WAL_HEADER_SIZE) return undefined;
  const { bytesRead } = await handle.read(frameHeader, 0, WAL_FRAME_HEADER_SIZE, start);
  if (bytesRead < WAL_FRAME_HEADER_SIZE) return undefined;
  return [frameHeader.readUInt32BE(16), frameHeader.readUInt32BE(20)];
}

function walkFrames(bytes: Buffer, from: ChainPoint, frameSize: number): { commitEnd: number; commitChecksum: WalChecksum; broken: boolean } {
  let checksum = from.checksum;
  let commitEnd = 0;
  let commitChecksum = from.checksum;
  for (let at = 0; at + frameSize <= bytes.length; at += frameSize) {
    const frame = checkFrame(bytes.subarray(at, at + frameSize), from.header, checksum, from.header.bigEndianChecksum);
    if (!frame) return { commitEnd, commitChecksum, broken: true };
    checksum = frame.checksum;
    if (frame.commitSize !== 0) {
      commitEnd = at + frameSize;
      commitChecksum = checksum;
    }
  }
  return { commitEnd, commitChecksum, broken: false };
}
