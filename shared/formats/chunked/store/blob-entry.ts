import { IntegrityError } from '../../../errors.js';

/** What a blob is: file content (`data`) or a directory object (`tree`). */
export type BlobType = 'data' | 'tree';

/** Where a blob is and how long it is. Offsets and lengths in bytes. */
export interface BlobEntry {
  type: BlobType;
  /** 64 lowercase hex characters (`BlobCipher.blobId` of the plaintext). */
  id: string;
  /** Where the stored (compressed, sealed) blob starts in its pack. */
  offset: number;
  /** Stored length in the pack. */
  length: number;
  /** Plaintext length. */
  rawLength: number;
}

/**
 * One blob entry as packs and index objects store it (docs/chunked-format.md, "Packs"):
 * type (1 byte: 0 data, 1 tree), id (32 bytes), offset, length, raw length (each u32 LE).
 */
export const BLOB_ENTRY_BYTES = 45;

const TYPE_CODES: Record<BlobType, number> = { data: 0, tree: 1 };
const TYPES: readonly BlobType[] = ['data', 'tree'];

/** The type's byte in an entry. */
export function blobTypeCode(type: BlobType): number {
  return TYPE_CODES[type];
}

/** The type a byte names. @throws IntegrityError for an unknown one. */
export function blobTypeOf(code: number, what: string): BlobType {
  const type = TYPES[code];
  if (!type) throw new IntegrityError(`${what}: unknown blob type ${code}`);
  return type;
}

/** Writes `entry` at `at` in `target`. */
export function writeBlobEntry(target: Buffer, at: number, entry: BlobEntry): void {
  target[at] = TYPE_CODES[entry.type];
  target.write(entry.id, at + 1, 32, 'hex');
  target.writeUInt32LE(entry.offset, at + 33);
  target.writeUInt32LE(entry.length, at + 37);
  target.writeUInt32LE(entry.rawLength, at + 41);
}

/** Reads the entry at `at` of `source`. @throws IntegrityError for an unknown type. */
export function readBlobEntry(source: Buffer, at: number, what: string): BlobEntry {
  return {
    type: blobTypeOf(source[at]!, what),
    id: source.toString('hex', at + 1, at + 33),
    offset: source.readUInt32LE(at + 33),
    length: source.readUInt32LE(at + 37),
    rawLength: source.readUInt32LE(at + 41),
  };
}

/** Checks a table of entries against the object holding them: inside it, non-overlapping in order. */
export function checkBlobEntries(entries: readonly BlobEntry[], dataEnd: number, what: string): void {
  let next = 0;
  for (const entry of entries) {
    if (entry.offset < next || entry.offset + entry.length > dataEnd) throw new IntegrityError(`${what}: blob ${entry.id} at ${entry.offset}+${entry.length} lies outside the pack's data or overlaps another`);
    next = entry.offset + entry.length;
  }
}
