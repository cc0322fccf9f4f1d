import { IntegrityError } from '../errors.js';

/*
 * Sparse files, format-neutral: a source describes a sparse file by its data segments and
 * yields only their bytes; a format stores them its own way (the archive: pax sparse 1.0); a
 * target places the bytes back with `SparseCursor`.
 */

/** One run of data in a sparse file: `length` bytes at byte `offset`; everything between runs is a hole. */
export interface DataSegment {
  offset: number;
  length: number;
}

/**
 * Most segments a sparse entry may have (the map is held in memory and precedes the data). A
 * source that finds more stores the file densely instead; a reader refuses more.
 */
export const MAX_SPARSE_SEGMENTS = 65_536;

/** Bytes of data (not holes) in the segments. */
export function dataBytes(segments: readonly DataSegment[]): number {
  let total = 0;
  for (const segment of segments) total += segment.length;
  return total;
}

/** A piece of a sparse entry's packed data and the file offset it belongs at. */
export interface PlacedBytes {
  position: number;
  bytes: Buffer;
}

/**
 * Walks a sparse entry's packed data (the segments' bytes back to back, as a reader's body yields them) and
 * tells where in the file each piece goes. Chunks may start and end anywhere.
 */
export class SparseCursor {
  private index = 0;
  private inSegment = 0;

  constructor(
    private readonly segments: readonly DataSegment[],
    private readonly entryName: string,
  ) {}

  /**
   * The pieces of `chunk`, each within one segment, in order.
   *
   * @throws IntegrityError when the chunk goes past the last segment.
   */
  place(chunk: Buffer): PlacedBytes[] {
    const pieces: PlacedBytes[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      const segment = this.segments[this.index];
      if (!segment) throw new IntegrityError(`entry ${this.entryName}: more data than its sparse map holds`);
      const take = Math.min(chunk.length - offset, segment.length - this.inSegment);
      pieces.push({ position: segment.offset + this.inSegment, bytes: chunk.subarray(offset, offset + take) });
      offset += take;
      this.inSegment += take;
      if (this.inSegment === segment.length) {
        this.index += 1;
        this.inSegment = 0;
      }
    }
    return pieces;
  }

  /** True once every segment's bytes went through `place`. */
  get complete(): boolean {
    return this.index === this.segments.length;
  }
}

