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
 * Splits a byte stream into content-defined chunks (see the top of this file). Every chunk is a
 * fresh Buffer the caller may keep. Memory: one work buffer that grows to at most 2 × `max`
 * (small inputs never allocate more than their size, rounded up).
 * @param source Buffers (or a Readable of them); empty input yields no chunk.
 * @param params sizes and gear table (`ChunkerParams`); defaults 512 KiB / 1 MiB / 8 MiB.
 * @throws InvalidInputError for bad parameters; errors of `source` pass through.
 */
export async function* chunkStream(source: AsyncIterable<Buffer> | Readable, params?: Partial<ChunkerParams>): AsyncIterable<Buffer> {
  const p = chunkerParams(params);
  let work = Buffer.allocUnsafe(0);
  let start = 0;
  let end = 0;
  const cutOne = (): Buffer => {
    const cut = findCut(work, start, Math.min(end, start + p.max), p);
    const chunk = Buffer.allocUnsafe(cut - start);
    work.copy(chunk, 0, start, cut);
    start = cut;
    return chunk;
  };
  for await (const piece of source as AsyncIterable<Buffer>) {
    let offset = 0;
    while (offset < piece.length) {
      if (end === work.length) {
        // Make room: drop what was cut, then grow up to 2 × max if still full.
        if (start > 0) {
          work.copy(work, 0, start, end);
          end -= start;
          start = 0;
        }
        if (end === work.length) {
          const grown = Buffer.allocUnsafe(Math.min(2 * p.max, Math.max(64 * 1024, work.length * 2, end + piece.length - offset)));
          work.copy(grown, 0, 0, end);
          work = grown;
        }
      }
      const take = Math.min(piece.length - offset, work.length - end);
      piece.copy(work, end, offset, offset + take);
      end += take;
      offset += take;
      while (end - start >= p.max) yield cutOne();
    }
  }
  while (end > start) yield cutOne();
}
