import { compress, decompress } from 'zstd-napi';
import { IntegrityError } from '../../../errors.js';
import type { BlobCipher } from '../../../crypto/blob-cipher.js';
import { BLOB_ENTRY_BYTES, checkBlobEntries, readBlobEntry, type BlobEntry } from './blob-entry.js';

/**
 * An index object (docs/chunked-format.md, "Index objects"): immutable, zstd-compressed, then
 * sealed. It lists packs, each either `listed` (its blobs are readable there) or `deleted` (a
 * tombstone: garbage collection marked it and deletes it after the grace window), each with the
 * time that state was decided, and names the index objects it supersedes (compaction).
 */
const MAGIC = Buffer.from('SWIX');
const VERSION = 1;
const INDEX_AAD = Buffer.from('snapworker index');
/** Per pack before its entries: id 32, state 1, at 8, deleteAfter 8, size 4, count 4. */
const PACK_FIXED = 32 + 1 + 8 + 8 + 4 + 4;
/** No index object we write comes near this; a bigger one is refused as damaged. */
const MAX_INDEX_PLAINTEXT = 1024 * 1024 * 1024;

export type PackState = 'listed' | 'deleted';

/** One pack in an index object. */
export interface PackRecord {
  packId: string;
  state: PackState;
  /** When this state was decided, ms since the epoch: for a pack, the latest record wins. */
  at: number;
  /**
   * For a tombstone: the time (ms since the epoch) from which garbage collection may delete the
   * pack; until then a writer that relies on one of its blobs revives it. 0 for a listed pack.
   */
  deleteAfter: number;
  /** The pack object's size in bytes. */
  size: number;
  /** The pack's blob entries, `BLOB_ENTRY_BYTES` each, in pack order (`packEntries` reads them). */
  entries: Buffer;
}

/** What an index object holds. */
export interface IndexContents {
  /** Index ids whose contents this object includes; readers ignore those objects. */
  supersedes: string[];
  packs: PackRecord[];
}

/** The stored bytes of an index object. */
export function encodeIndex(contents: IndexContents, cipher: BlobCipher): Buffer {
  const size = MAGIC.length + 1 + 4 + contents.supersedes.length * 32 + 4 + contents.packs.reduce((sum, pack) => sum + PACK_FIXED + pack.entries.length, 0);
  const plain = Buffer.alloc(size);
  let at = 0;
  MAGIC.copy(plain, at);
  at += MAGIC.length;
  plain[at++] = VERSION;
  at = plain.writeUInt32LE(contents.supersedes.length, at);
  for (const id of contents.supersedes) at += plain.write(id, at, 32, 'hex');
  at = plain.writeUInt32LE(contents.packs.length, at);
  for (const pack of contents.packs) {
    at += plain.write(pack.packId, at, 32, 'hex');
    plain[at++] = pack.state === 'listed' ? 1 : 2;
    at = plain.writeDoubleLE(pack.at, at);
    at = plain.writeDoubleLE(pack.deleteAfter, at);
    at = plain.writeUInt32LE(pack.size, at);
    at = plain.writeUInt32LE(pack.entries.length / BLOB_ENTRY_BYTES, at);
    at += pack.entries.copy(plain, at);
  }
  return cipher.seal(compress(plain, { compressionLevel: 3 }), INDEX_AAD);
}

/**
 * Reads an index object's stored bytes.
 * @throws IntegrityError for anything that does not open, decompress or parse.
 */
export function decodeIndex(stored: Buffer, cipher: BlobCipher, what: string): IndexContents {
  let plain: Buffer;
  try {
    plain = decompress(cipher.open(stored, INDEX_AAD, what));
  } catch (err) {
    if (err instanceof IntegrityError) throw err;
    throw new IntegrityError(`${what}: does not decompress`, { cause: err });
  }
  if (plain.length > MAX_INDEX_PLAINTEXT) throw new IntegrityError(`${what}: too large`);
  const need = (at: number, bytes: number): void => {
    if (at + bytes > plain.length) throw new IntegrityError(`${what}: truncated`);
  };
  need(0, MAGIC.length + 5);
  if (!plain.subarray(0, MAGIC.length).equals(MAGIC)) throw new IntegrityError(`${what}: not an index object`);
  if (plain[MAGIC.length] !== VERSION) throw new IntegrityError(`${what}: index version ${plain[MAGIC.length]} is not supported`);
  let at = MAGIC.length + 1;
  const supersededCount = plain.readUInt32LE(at);
  at += 4;
  need(at, supersededCount * 32 + 4);
  const supersedes: string[] = [];
  for (let i = 0; i < supersededCount; i++, at += 32) supersedes.push(plain.toString('hex', at, at + 32));
  const packCount = plain.readUInt32LE(at);
  at += 4;
  const packs: PackRecord[] = [];
  for (let i = 0; i < packCount; i++) {
    need(at, PACK_FIXED);
    const packId = plain.toString('hex', at, at + 32);
    const stateCode = plain[at + 32];
    if (stateCode !== 1 && stateCode !== 2) throw new IntegrityError(`${what}: pack ${packId} has unknown state ${stateCode}`);
    const when = plain.readDoubleLE(at + 33);
    const deleteAfter = plain.readDoubleLE(at + 41);
    const size = plain.readUInt32LE(at + 49);
    const count = plain.readUInt32LE(at + 53);
    at += PACK_FIXED;
    need(at, count * BLOB_ENTRY_BYTES);
    if (!Number.isFinite(when) || !Number.isFinite(deleteAfter)) throw new IntegrityError(`${what}: pack ${packId} has no valid time`);
    packs.push({ packId, state: stateCode === 1 ? 'listed' : 'deleted', at: when, deleteAfter, size, entries: plain.subarray(at, at + count * BLOB_ENTRY_BYTES) });
    at += count * BLOB_ENTRY_BYTES;
  }
  if (at !== plain.length) throw new IntegrityError(`${what}: trailing bytes`);
  return { supersedes, packs };
}

/** The entries of a pack record, checked to lie inside the pack. @throws IntegrityError. */
export function packEntries(pack: PackRecord, what: string): BlobEntry[] {
  const entries: BlobEntry[] = [];
  for (let at = 0; at < pack.entries.length; at += BLOB_ENTRY_BYTES) entries.push(readBlobEntry(pack.entries, at, what));
  checkBlobEntries(entries, pack.size, `${what}, pack ${pack.packId}`);
  return entries;
}
