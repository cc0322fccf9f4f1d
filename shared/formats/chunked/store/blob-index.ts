import { blobTypeCode, blobTypeOf, type BlobType } from './blob-entry.js';

/** Where a blob is: its pack (a number the owner maps to a pack id) and its place there. */
export interface BlobLocation {
  pack: number;
  type: BlobType;
  offset: number;
  length: number;
  rawLength: number;
}

/** Bytes per blob in the sorted table: id 32, pack 4, offset 4, length 4, raw length 4, type 1. */
export const SORTED_BYTES_PER_BLOB = 32 + 4 * 4 + 1;

/**
 * The in-memory index of blob id → location, compact: one sorted table of ids (32 bytes each) in
 * one Buffer and parallel typed arrays (`SORTED_BYTES_PER_BLOB` bytes per blob, about 49 MB per
 * million blobs), searched by bisection; additions wait in a small map and are merged in when it
 * reaches 1/16 of the table (at least `mergeAt`), so merging costs O(1) amortized per blob and the
 * map stays a small fraction of the whole. Not thread-safe; one writer.
 */
export class BlobIndex {
  private ids = Buffer.alloc(0);
  private packs = new Uint32Array(0);
  private offsets = new Uint32Array(0);
  private lengths = new Uint32Array(0);
  private rawLengths = new Uint32Array(0);
  private types = new Uint8Array(0);
  private count = 0;
  private recent = new Map<string, BlobLocation>();

  /** @param mergeAt the smallest number of waiting additions that triggers a merge (default 16384). */
  constructor(private readonly mergeAt = 16384) {}

  /** Blobs held. */
  get size(): number {
    return this.count + this.recent.size;
  }

  /** Adds `id` at `location` unless the index has it already (the first location stays). */
  add(id: string, location: BlobLocation): void {
    if (this.has(id)) return;
    this.recent.set(id, location);
    if (this.recent.size >= Math.max(this.mergeAt, this.count >>> 4)) this.merge();
  }

  has(id: string): boolean {
    return this.recent.has(id) || this.find(id) >= 0;
  }

  /** The location of `id`, or undefined. */
  get(id: string): BlobLocation | undefined {
    const waiting = this.recent.get(id);
    if (waiting) return waiting;
    const i = this.find(id);
    if (i < 0) return undefined;
    return { pack: this.packs[i]!, type: blobTypeOf(this.types[i]!, 'blob index'), offset: this.offsets[i]!, length: this.lengths[i]!, rawLength: this.rawLengths[i]! };
  }

  /** Every id and location, in no particular order. */
  *entries(): IterableIterator<[string, BlobLocation]> {
    this.merge();
    for (let i = 0; i < this.count; i++) {
      yield [this.ids.toString('hex', i * 32, i * 32 + 32), { pack: this.packs[i]!, type: blobTypeOf(this.types[i]!, 'blob index'), offset: this.offsets[i]!, length: this.lengths[i]!, rawLength: this.rawLengths[i]! }];
    }
  }

  /** Bytes the sorted table takes (after merging what waits). */
  tableBytes(): number {
    this.merge();
    return this.ids.byteLength + this.packs.byteLength + this.offsets.byteLength + this.lengths.byteLength + this.rawLengths.byteLength + this.types.byteLength;
  }

  /** Index of `id` in the sorted table, or -1. */
  private find(id: string): number {
    if (this.count === 0) return -1;
    const key = Buffer.from(id, 'hex');
    if (key.length !== 32) return -1;
    let low = 0;
    let high = this.count - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const order = this.ids.compare(key, 0, 32, mid * 32, mid * 32 + 32);
      if (order === 0) return mid;
      if (order < 0) low = mid + 1;
      else high = mid - 1;
    }
    return -1;
  }

  /** Merges the waiting additions into the sorted table (hex order is byte order). */
  private merge(): void {
    if (this.recent.size === 0) return;
    const added = [...this.recent.keys()].sort();
    const total = this.count + added.length;
    const ids = Buffer.allocUnsafe(total * 32);
    const packs = new Uint32Array(total);
    const offsets = new Uint32Array(total);
    const lengths = new Uint32Array(total);
    const rawLengths = new Uint32Array(total);
    const types = new Uint8Array(total);
    let i = 0;
    let j = 0;
    let out = 0;
    const key = Buffer.allocUnsafe(32);
    while (i < this.count || j < added.length) {
      let takeOld = j >= added.length;
      if (!takeOld && i < this.count) {
        key.write(added[j]!, 0, 32, 'hex');
        takeOld = this.ids.compare(key, 0, 32, i * 32, i * 32 + 32) < 0;
      }
      if (takeOld) {
        this.ids.copy(ids, out * 32, i * 32, i * 32 + 32);
        packs[out] = this.packs[i]!;
        offsets[out] = this.offsets[i]!;
        lengths[out] = this.lengths[i]!;
        rawLengths[out] = this.rawLengths[i]!;
        types[out] = this.types[i]!;
        i++;
      } else {
        const location = this.recent.get(added[j]!)!;
        ids.write(added[j]!, out * 32, 32, 'hex');
        packs[out] = location.pack;
        offsets[out] = location.offset;
        lengths[out] = location.length;
        rawLengths[out] = location.rawLength;
        types[out] = blobTypeCode(location.type);
        j++;
      }
      out++;
    }
    Object.assign(this, { ids, packs, offsets, lengths, rawLengths, types, count: total });
    this.recent.clear();
  }
}
