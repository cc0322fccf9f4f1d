import { compress, decompress } from 'zstd-napi';
import { IntegrityError } from '../../../errors.js';
import type { BlobCipher } from '../../../crypto/blob-cipher.js';
import { blobAad } from './pack-format.js';

/** A blob's stored bytes: zstd at `level`, then sealed with its id as additional data. */
export function encodeBlob(cipher: BlobCipher, id: string, plaintext: Buffer, level: number): Buffer {
  return cipher.seal(compress(plaintext, { compressionLevel: level }), blobAad(id));
}

/**
 * A blob's plaintext from its stored bytes: opened, decompressed, and checked to be `rawLength`
 * bytes whose id is `id`.
 * @throws IntegrityError when any of that fails (naming the blob).
 */
export function decodeBlob(cipher: BlobCipher, id: string, stored: Buffer, rawLength: number): Buffer {
  let plaintext: Buffer;
  try {
    plaintext = decompress(cipher.open(stored, blobAad(id), `blob ${id}`));
  } catch (err) {
    if (err instanceof IntegrityError) throw err;
    throw new IntegrityError(`blob ${id}: does not decompress (damaged pack)`, { cause: err });
  }
  if (plaintext.length !== rawLength || cipher.blobId(plaintext) !== id) throw new IntegrityError(`blob ${id}: content does not match its id (damaged pack)`);
  return plaintext;
}
