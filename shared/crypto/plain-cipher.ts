import { createHmac } from 'node:crypto';
import { InvalidInputError } from '../errors.js';
import type { BlobCipher } from './blob-cipher.js';

/** Bytes of an id key: HMAC-SHA256's block-sized key would be 64; 32 is its output size and plenty. */
export const ID_KEY_BYTES = 32;

/**
 * The `BlobCipher` of an unencrypted repository: blob ids are HMAC-SHA256 under the repository's
 * id key (so ids never change when encryption is turned on, and equal content in two
 * repositories has different ids), and sealing is the identity: stored bytes are the plaintext.
 * Integrity then rests on the id check after loading (the plaintext's HMAC must equal its id).
 */
export class PlainCipher implements BlobCipher {
  readonly keyId = undefined;
  private readonly idKey: Buffer;

  /**
   * @param idKey the repository's id key, `ID_KEY_BYTES` bytes (store-config.ts keeps it in
   *   `config.json` for unencrypted repositories).
   * @throws InvalidInputError for a key of another length.
   */
  constructor(idKey: Buffer) {
    if (idKey.length !== ID_KEY_BYTES) throw new InvalidInputError(`plain cipher: id key must be ${ID_KEY_BYTES} bytes, got ${idKey.length}`);
    this.idKey = Buffer.from(idKey);
  }

  /** HMAC-SHA256 of `plaintext` under the id key, 64 lowercase hex characters. */
  blobId(plaintext: Buffer): string {
    return createHmac('sha256', this.idKey).update(plaintext).digest('hex');
  }

  /** The identity: unencrypted repositories store the bytes as they are; `aad` is unused. */
  seal(plaintext: Buffer, _aad: Buffer): Buffer {
    return plaintext;
  }

  /** The identity (see `seal`): tampering shows up in the caller's id check instead. */
  open(sealed: Buffer, _aad: Buffer): Buffer {
    return sealed;
  }
}
