import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { IntegrityError } from '../errors.js';

/** AES-256-GCM key length. */
export const AEAD_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Bytes `aeadSeal` adds to a plaintext: the nonce before it, the tag after it. */
export const AEAD_OVERHEAD = NONCE_BYTES + TAG_BYTES;

/**
 * Seals `plaintext` with AES-256-GCM (NIST SP 800-38D) under `key`, bound to `aad`:
 * `nonce (12 random bytes) || ciphertext || tag (16 bytes)`. Random 96-bit nonces stay safe for
 * 2^32 messages per key (SP 800-38D §8.3), far beyond what one repository seals.
 */
export function aeadSeal(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const final = cipher.final();
  return Buffer.concat([nonce, body, final, cipher.getAuthTag()]);
}

/**
 * Opens what `aeadSeal` produced.
 * @throws IntegrityError naming `what` when the bytes were changed, are too short, or were sealed
 *   under another key or aad.
 */
export function aeadOpen(key: Buffer, sealed: Buffer, aad: Buffer, what = 'sealed object'): Buffer {
  if (sealed.length < AEAD_OVERHEAD) throw new IntegrityError(`${what}: ${sealed.length} bytes, too short to be sealed`);
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  const body = decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([body, decipher.final()]);
  } catch (err) {
    throw new IntegrityError(`${what}: authentication failed (changed, or sealed under another key)`, { cause: err });
  }
}
