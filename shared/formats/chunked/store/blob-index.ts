import { BLOB_ENTRY_BYTES } from './blob-entry.js';
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

/** Blobs in columns: ids back to back (32 bytes each) and one typed array per field. */
interface Table {
  ids: Buffer;
  packs: Uint32Array;
  offsets: Uint32Array;
  lengths: Uint32Array;
  rawLengths: Uint32Array;
  types: Uint8Array;
  count: number;
}

/**
 * Orders the id at byte `ai` of `a` against the one at `bi` of `b` (negative: a first). A loop in
 * JavaScript: random ids differ in their first byte or two, and `Buffer#compare` with offsets
 * costs a native call with argument checks each time, several times slower here.
 */
function compareIds(a: Uint8Array, ai: number, b: Uint8Array, bi: number): number {
  for (let k = 0; k < 32; k++) {
    const d = a[ai + k]! - b[bi + k]!;
    if (d !== 0) return d;
  }
  return 0;
}

function newTable(capacity: number): Table {
  return {
    ids: Buffer.allocUnsafe(capacity * 32),
    packs: new Uint32Array(capacity),
    offsets: new Uint32Array(capacity),
    lengths: new Uint32Array(capacity),
    rawLengths: new Uint32Array(capacity),
    types: new Uint8Array(capacity),
    count: 0,
  };
}

function copyRow(from: Table, i: number, to: Table): void {
  const out = to.count++;
  // A typed-array copy: Buffer#copy's native call costs more than 32 bytes do.
  to.ids.set(from.ids.subarray(i * 32, i * 32 + 32), out * 32);
  to.packs[out] = from.packs[i]!;
  to.offsets[out] = from.offsets[i]!;
  to.lengths[out] = from.lengths[i]!;
  to.rawLengths[out] = from.rawLengths[i]!;
  to.types[out] = from.types[i]!;
}

/**
 * The in-memory index of blob id → location, compact: one sorted table of ids (32 bytes each) in
 * one Buffer and parallel typed arrays (`SORTED_BYTES_PER_BLOB` bytes per blob, about 49 MB per
 * million blobs), searched by bisection. Additions are staged in columns too (and, for `add`,
 * a small map for lookups), then sorted (by a counting sort on the first two id bytes, then
 * within each bucket) and merged in when they reach 1/16 of the table (at least `mergeAt`), so
 * merging costs O(1) amortized per blob. Not thread-safe; one writer.
 */
export class BlobIndex {
  private table: Table = newTable(0);
  private staged: Table = newTable(1024);
  /** Ids added one by one and not yet merged, for lookups before the merge. */
  private recent = new Map<string, BlobLocation>();

  /** @param mergeAt the smallest number of staged additions that triggers a merge (default 16384). */
  constructor(private readonly mergeAt = 16384) {}

  /** Blobs held (an id added twice before a merge counts twice until then). */
  get size(): number {
    return this.table.count + this.staged.count;
  }

  /** Adds `id` at `location` unless the index has it already (the first location stays). */
  add(id: string, location: BlobLocation): void {
    if (this.has(id)) return;
    this.recent.set(id, location);
    this.stage(Buffer.from(id, 'hex'), 0, location.pack, blobTypeCode(location.type), location.offset, location.length, location.rawLength);
  }

  /**
   * Adds the blob entries of one pack (`BLOB_ENTRY_BYTES` each, as packs and index objects store
   * them) without looking each up first: for reading index objects. Lookups see them after the
   * next merge, which the next lookup does. Duplicate ids keep one location.
   */
  addEntries(entries: Buffer, pack: number): void {
    this.staleLookups = true;
    for (let at = 0; at < entries.length; at += BLOB_ENTRY_BYTES) {
      this.stage(entries, at + 1, pack, entries[at]!, entries.readUInt32LE(at + 33), entries.readUInt32LE(at + 37), entries.readUInt32LE(at + 41));
    }
  }

  /** True when entries were staged by `addEntries` and lookups must merge first. */
  private staleLookups = false;

  has(id: string): boolean {
    if (this.staleLookups) this.merge();
    return this.recent.has(id) || this.find(id) >= 0;
  }

  /** The location of `id`, or undefined. */
  get(id: string): BlobLocation | undefined {
    if (this.staleLookups) this.merge();
    const waiting = this.recent.get(id);
    if (waiting) return waiting;
    const i = this.find(id);
    if (i < 0) return undefined;
    const t = this.table;
    return { pack: t.packs[i]!, type: blobTypeOf(t.types[i]!, 'blob index'), offset: t.offsets[i]!, length: t.lengths[i]!, rawLength: t.rawLengths[i]! };
  }

  /** Bytes the sorted table takes (after merging what is staged). */
  tableBytes(): number {
    this.merge();
    const t = this.table;
    return t.count * SORTED_BYTES_PER_BLOB;
  }

  private stage(ids: Buffer, idAt: number, pack: number, type: number, offset: number, length: number, rawLength: number): void {
    let s = this.staged;
    if (s.count === s.packs.length) {
      const grown = newTable(s.count * 2);
      for (let i = 0; i < s.count; i++) copyRow(s, i, grown);
      s = this.staged = grown;
    }
    const out = s.count++;
    ids.copy(s.ids, out * 32, idAt, idAt + 32);
    s.packs[out] = pack;
    s.offsets[out] = offset;
    s.lengths[out] = length;
    s.rawLengths[out] = rawLength;
    s.types[out] = type;
    if (!this.staleLookups && s.count >= Math.max(this.mergeAt, this.table.count >>> 4)) this.merge();
  }

  /** Index of `id` in the sorted table, or -1. */
  private find(id: string): number {
    const t = this.table;
    if (t.count === 0) return -1;
    const key = Buffer.from(id, 'hex');
    if (key.length !== 32) return -1;
    let low = 0;
    let high = t.count - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const order = compareIds(t.ids, mid * 32, key, 0);
      if (order === 0) return mid;
      if (order < 0) low = mid + 1;
      else high = mid - 1;
    }
    return -1;
  }

  /** Sorts the staged rows and merges them into the table, dropping repeated ids. */
  private merge(): void {
    this.staleLookups = false;
    const s = this.staged;
    if (s.count === 0) return;
    const order = sortedOrder(s);
    const t = this.table;
    const merged = newTable(t.count + s.count);
    let i = 0;
    let j = 0;
    while (i < t.count || j < order.length) {
      const takeOld = j >= order.length || (i < t.count && compareIds(t.ids, i * 32, s.ids, order[j]! * 32) <= 0);
      const from = takeOld ? t : s;
      const row = takeOld ? i++ : order[j++]!;
      // Both sides are sorted, so a repeated id follows its twin.
      if (merged.count === 0 || compareIds(merged.ids, (merged.count - 1) * 32, from.ids, row * 32) !== 0) copyRow(from, row, merged);
    }
    this.table = merged.count === merged.packs.length ? merged : shrink(merged);
    this.staged = newTable(1024);
    this.recent.clear();
  }
}

/** The staged rows' order by id: a counting sort on the first two bytes, then each bucket sorted. */
function sortedOrder(s: Table): Uint32Array {
  const starts = new Uint32Array(65537);
  for (let i = 0; i < s.count; i++) starts[s.ids.readUInt16BE(i * 32) + 1]!++;
  for (let b = 1; b <= 65536; b++) starts[b]! += starts[b - 1]!;
  const order = new Uint32Array(s.count);
  const next = starts.slice(0, 65536);
  for (let i = 0; i < s.count; i++) order[next[s.ids.readUInt16BE(i * 32)]!++] = i;
  const byId = (a: number, b: number): number => compareIds(s.ids, a * 32, s.ids, b * 32);
  for (let b = 0; b < 65536; b++) {
    if (starts[b + 1]! - starts[b]! > 1) order.subarray(starts[b]!, starts[b + 1]!).sort(byId);
  }
  return order;
}

/** A copy of `t` without its unused capacity. */
function shrink(t: Table): Table {
  const exact = newTable(t.count);
  for (let i = 0; i < t.count; i++) copyRow(t, i, exact);
  return exact;
}
