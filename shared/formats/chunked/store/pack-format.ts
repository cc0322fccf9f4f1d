import { randomBytes } from 'node:crypto';
import { IntegrityError } from '../../../errors.js';
import type { BlobCipher } from '../../../crypto/blob-cipher.js';
import { BLOB_ENTRY_BYTES, checkBlobEntries, readBlobEntry, writeBlobEntry, type BlobEntry } from './blob-entry.js';

/**
 * A pack (docs/chunked-format.md, "Packs"; after restic's pack format): stored blobs back to
 * back, then the sealed header, then the sealed header's length as u32 LE. The header lists
 * every blob (`BLOB_ENTRY_BYTES` each) after a magic, a version and a random nonce (so two packs
 * of the same blobs still differ, and their ids too).
 */
const MAGIC = Buffer.from('SWPK');
const VERSION = 1;
const NONCE_BYTES = 16;
const HEADER_FIXED = MAGIC.length + 1 + NONCE_BYTES + 4;
/** The header's seal binds it to its role: an index object cannot pass for a header. */
export const PACK_HEADER_AAD = Buffer.from('snapworker pack header');
/** The trailer: the sealed header's length. */
export const PACK_TRAILER_BYTES = 4;
/** Packs stay under 4 GiB: offsets are u32. */
export const MAX_PACK_BYTES = 0xffff_ffff;

/** The sealed header and trailer that end a pack whose data is `dataLength` bytes. */
export function encodePackTail(entries: readonly BlobEntry[], cipher: BlobCipher): Buffer {
  const header = Buffer.alloc(HEADER_FIXED + entries.length * BLOB_ENTRY_BYTES);
  MAGIC.copy(header, 0);
  header[MAGIC.length] = VERSION;
  randomBytes(NONCE_BYTES).copy(header, MAGIC.length + 1);
  header.writeUInt32LE(entries.length, MAGIC.length + 1 + NONCE_BYTES);
  entries.forEach((entry, i) => writeBlobEntry(header, HEADER_FIXED + i * BLOB_ENTRY_BYTES, entry));
  const sealed = cipher.seal(header, PACK_HEADER_AAD);
  const trailer = Buffer.alloc(PACK_TRAILER_BYTES);
  trailer.writeUInt32LE(sealed.length);
  return Buffer.concat([sealed, trailer]);
}

/**
 * The sealed header's length from a pack's trailer (its last 4 bytes), checked against the
 * pack's size. @throws IntegrityError when it cannot fit.
 */
export function sealedHeaderLength(trailer: Buffer, packSize: number, what: string): number {
  if (trailer.length !== PACK_TRAILER_BYTES) throw new IntegrityError(`${what}: truncated pack (no trailer)`);
  const length = trailer.readUInt32LE(0);
  if (length + PACK_TRAILER_BYTES > packSize) throw new IntegrityError(`${what}: header length ${length} does not fit a pack of ${packSize} bytes`);
  return length;
}

/**
 * The blobs a pack's sealed header lists, checked to lie inside the pack's data
 * (`dataLength`: the pack's size less header and trailer).
 * @throws IntegrityError for a header that does not open or parse.
 */
export function decodePackHeader(sealed: Buffer, dataLength: number, cipher: BlobCipher, what: string): BlobEntry[] {
  const header = cipher.open(sealed, PACK_HEADER_AAD, `${what} header`);
  if (header.length < HEADER_FIXED || !header.subarray(0, MAGIC.length).equals(MAGIC)) throw new IntegrityError(`${what}: not a pack header`);
  if (header[MAGIC.length] !== VERSION) throw new IntegrityError(`${what}: pack header version ${header[MAGIC.length]} is not supported`);
  const count = header.readUInt32LE(MAGIC.length + 1 + NONCE_BYTES);
  if (header.length !== HEADER_FIXED + count * BLOB_ENTRY_BYTES) throw new IntegrityError(`${what}: pack header length does not match its ${count} entries`);
  const entries: BlobEntry[] = [];
  for (let i = 0; i < count; i++) entries.push(readBlobEntry(header, HEADER_FIXED + i * BLOB_ENTRY_BYTES, what));
  checkBlobEntries(entries, dataLength, what);
  return entries;
}

/** A blob's additional data when sealed: its id's 32 bytes, so a blob moved under another id fails to open. */
export function blobAad(id: string): Buffer {
  return Buffer.from(id, 'hex');
}
