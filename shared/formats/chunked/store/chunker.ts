import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { InvalidInputError } from '../../../errors.js';
import type { BlobCipher } from '../../../crypto/blob-cipher.js';

/**
 * Content-defined chunking: FastCDC (Xia et al., "FastCDC: a Fast and Efficient Content-Defined
 * Chunking Approach for Data Deduplication", USENIX ATC 2016, and its 2020 TPDS version) with a
 * gear rolling hash and normalized chunking (level 2): below the average size a cut needs
 * `log2(avg) + 2` zero bits, above it `log2(avg) - 2`, which pulls chunk sizes towards the
 * average; no cut is looked for before `min` (those bytes are skipped, not hashed) and one is
 * forced at `max`. A cut depends only on the 32 bytes before it, so an insertion moves the cuts
 * next to it and the chunks after the next cut are unchanged.
 *
 * The hash is 32 bits wide (JavaScript's fast integer width); its top bits carry the most bytes,
 * so the masks use the top bits.
 */

/** Chunk sizes in bytes. */
export interface ChunkerParams {
  /** No cut before this many bytes (default 512 KiB). */
  min: number;
  /** The size chunks gather around; rounded to a power of two for the masks (default 1 MiB). */
  avg: number;
  /** A cut is forced here (default 8 MiB). */
  max: number;
  /**
   * The gear table: 256 32-bit values (`gearTable`). Default: `DEFAULT_GEAR`, fixed constants.
   * A store passes `gearTableFor(cipher)` so the table is as secret as the repository's id key.
   */
  gear?: Int32Array;
}

/** The default sizes: 512 KiB / 1 MiB / 8 MiB (issue 14; restic's are 512 KiB / 1 MiB / 8 MiB too). */
export const DEFAULT_CHUNKER_PARAMS: Readonly<Required<Omit<ChunkerParams, 'gear'>>> = Object.freeze({
  min: 512 * 1024,
  avg: 1024 * 1024,
  max: 8 * 1024 * 1024,
});

/** Bounds on chunker sizes: a blob's length is a 32-bit field in packs and indexes. */
const SMALLEST_MIN = 64;
const LARGEST_MAX = 64 * 1024 * 1024;

/**
 * A gear table from a seed: entry i is the first 4 bytes (big-endian, signed) of
 * SHA-256(seed ‖ "gear" ‖ i as one byte). Any seed gives a well-mixed table.
 */
export function gearTable(seed: Buffer): Int32Array {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    table[i] = createHash('sha256').update(seed).update('gear').update(Buffer.of(i)).digest().readInt32BE(0);
  }
  return table;
}

/** The fixed table used when none is given (seed "snapworker fastcdc v1"). */
export const DEFAULT_GEAR: Int32Array = gearTable(Buffer.from('snapworker fastcdc v1'));

/**
 * The gear table of a repository: seeded by the blob id of a constant under the repository's
 * cipher, i.e. by its id key. With a secret id key (an encrypted repository) cut points, and so
 * the chunk sizes an observer of the packs could see, cannot be predicted for a known file,
 * which is restic's reason for a per-repository polynomial; it costs nothing, and ids are keyed
 * per repository anyway, so no cross-repository dedup is lost.
 */
export function gearTableFor(cipher: BlobCipher): Int32Array {
  return gearTable(Buffer.from(cipher.blobId(Buffer.from('snapworker chunker gear v1')), 'hex'));
}

/**
 * Checks chunker parameters and fills defaults.
 * @throws InvalidInputError naming the bad value.
 */
export function chunkerParams(params: Partial<ChunkerParams> = {}): Required<ChunkerParams> {
  const merged = { ...DEFAULT_CHUNKER_PARAMS, gear: DEFAULT_GEAR, ...params };
  const { min, avg, max, gear } = merged;
  for (const [name, value] of Object.entries({ min, avg, max })) {
    if (!Number.isSafeInteger(value) || value < SMALLEST_MIN || value > LARGEST_MAX) {
      throw new InvalidInputError(`chunker: ${name} must be an integer from ${SMALLEST_MIN} to ${LARGEST_MAX} bytes, got ${value}`);
    }
  }
  if (!(min < avg && avg < max)) throw new InvalidInputError(`chunker: sizes must satisfy min < avg < max, got ${min} / ${avg} / ${max}`);
  if (!(gear instanceof Int32Array) || gear.length !== 256) throw new InvalidInputError('chunker: the gear table must be an Int32Array of 256 entries');
  return merged;
}

/** The top `bits` bits set. */
function topBits(bits: number): number {
  return bits >= 32 ? -1 : ~(-1 >>> bits);
}

/**
 * Where the first chunk of `data[start, end)` ends (an index into `data`, exclusive), given that
 * `end - start` is at most `max`. Exported for the bench; the store uses `chunkStream`.
 */
export function findCut(data: Uint8Array, start: number, end: number, p: Required<ChunkerParams>): number {
  const length = end - start;
  if (length <= p.min) return end;
  const bits = Math.round(Math.log2(p.avg));
  const maskS = topBits(bits + 2);
  const maskL = topBits(bits - 2);
  const gear = p.gear;
  const normal = start + Math.min(p.avg, length);
  let fp = 0;
  let i = start + p.min;
  for (; i < normal; i++) {
    fp = ((fp << 1) + gear[data[i]!]!) | 0;
    if ((fp & maskS) === 0) return i + 1;
  }
  for (; i < end; i++) {
    fp = ((fp << 1) + gear[data[i]!]!) | 0;
    if ((fp & maskL) === 0) return i + 1;
  }
  return end;
}

/**
 * The chunks of bytes held whole in memory (a small file the source read ahead), cut exactly
 * where `chunkStream` would cut them, as views into `data` without copying: most files of a
 * source tree are under the minimum and come out as `data` itself. The views share `data`'s
 * memory, so the caller must not change it while it keeps them.
 * @param params sizes and gear table, as `chunkStream`'s.
 * @throws InvalidInputError for bad parameters.
 */
export function* chunkBuffer(data: Buffer, params?: Partial<ChunkerParams>): Generator<Buffer> {
  const p = chunkerParams(params);
  for (let start = 0; start < data.length; ) {
    const cut = findCut(data, start, Math.min(data.length, start + p.max), p);
    yield data.subarray(start, cut);
    start = cut;
  }
}

/**
 * `findCut` resumable across the pieces of a stream: fed the bytes of the current chunk piece by
 * piece, it finds the same cut `findCut` finds in them laid end to end, keeping only the rolling
 * hash and the chunk's length between pieces, so no byte is copied to be scanned.
 */
class CutScanner {
  private fp = 0;
  /** Bytes of the current chunk before the next piece. */
  private length = 0;
  private readonly maskS: number;
  private readonly maskL: number;

  constructor(private readonly p: Required<ChunkerParams>) {
    const bits = Math.round(Math.log2(p.avg));
    this.maskS = topBits(bits + 2);
    this.maskL = topBits(bits - 2);
  }

  /**
   * Scans `piece[at, end)`: the index just past the cut that ends the current chunk (the next
   * chunk then starts there), or -1 when the chunk goes on past `end`.
   */
  next(piece: Uint8Array, at: number, end: number): number {
    const { min, avg, max, gear } = this.p;
    const { maskS, maskL } = this;
    // Where the chunk would start in this piece's coordinates (negative when it began before).
    const base = at - this.length;
    let i = Math.max(at, base + min);
    let fp = this.fp;
    const normal = Math.min(end, base + avg);
    for (; i < normal; i++) {
      fp = ((fp << 1) + gear[piece[i]!]!) | 0;
      if ((fp & maskS) === 0) return this.cut(i + 1);
    }
    const limit = Math.min(end, base + max);
    for (; i < limit; i++) {
      fp = ((fp << 1) + gear[piece[i]!]!) | 0;
      if ((fp & maskL) === 0) return this.cut(i + 1);
    }
    if (limit === base + max) return this.cut(limit);
    this.fp = fp;
    this.length = end - base;
    return -1;
  }

  private cut(at: number): number {
    this.fp = 0;
    this.length = 0;
    return at;
  }
}

/**
 * Splits a byte stream into content-defined chunks (see the top of this file), cutting where
 * `findCut` would over the whole input. Every chunk is a fresh Buffer the caller may keep. The
 * pieces of the chunk being scanned are held, not copied, until it is cut (one copy per byte, into
 * the chunk), so a source must not reuse a Buffer it yielded (Node streams never do). Memory: the
 * current chunk's pieces, at most `max` bytes plus one piece.
 * @param source Buffers (or a Readable of them); empty input yields no chunk.
 * @param params sizes and gear table (`ChunkerParams`); defaults 512 KiB / 1 MiB / 8 MiB.
 * @throws InvalidInputError for bad parameters; errors of `source` pass through.
 */
export async function* chunkStream(source: AsyncIterable<Buffer> | Readable, params?: Partial<ChunkerParams>): AsyncIterable<Buffer> {
  const scanner = new CutScanner(chunkerParams(params));
  let held: Buffer[] = [];
  let heldBytes = 0;
  for await (const piece of source as AsyncIterable<Buffer>) {
    let at = 0;
    while (at < piece.length) {
      const cut = scanner.next(piece, at, piece.length);
      if (cut < 0) {
        held.push(at === 0 ? piece : piece.subarray(at));
        heldBytes += piece.length - at;
        break;
      }
      held.push(piece.subarray(at, cut));
      yield Buffer.concat(held, heldBytes + cut - at);
      held = [];
      heldBytes = 0;
      at = cut;
    }
  }
  if (heldBytes > 0) yield Buffer.concat(held, heldBytes);
}
