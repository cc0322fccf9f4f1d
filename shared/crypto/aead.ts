import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';
import { IntegrityError } from '../errors.js';

/** AES-256-GCM key length. */
export const AEAD_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Bytes `aeadSeal` adds to a plaintext: the nonce before it, the tag after it. */
export const AEAD_OVERHEAD = NONCE_BYTES + TAG_BYTES;

/**
 * Random nonces drawn 1,024 at a time: `randomBytes(12)` costs about as much as sealing an 8 KiB
 * blob (a call into OpenSSL's CSPRNG each time), and the chunked format seals one per small file.
 * The bytes are the same CSPRNG output either way, each used once.
 */
const NONCE_POOL_BYTES = NONCE_BYTES * 1024;
let noncePool = Buffer.alloc(0);
let noncePoolAt = 0;

function freshNonce(): Buffer {
  if (noncePoolAt === noncePool.length) {
    noncePool = randomBytes(NONCE_POOL_BYTES);
    noncePoolAt = 0;
  }
  noncePoolAt += NONCE_BYTES;
  return noncePool.subarray(noncePoolAt - NONCE_BYTES, noncePoolAt);
}

/**
 * Seals `plaintext` with AES-256-GCM (NIST SP 800-38D) under `key` (32 bytes; a KeyObject made
 * once with `createSecretKey` spares converting it on every call), bound to `aad`:
 * `nonce (12 random bytes) || ciphertext || tag (16 bytes)`. Random 96-bit nonces stay safe for
 * 2^32 messages per key (SP 800-38D §8.3), far beyond what one repository seals.
 */
export function aeadSeal(key: Buffer | KeyObject, plaintext: Buffer, aad: Buffer): Buffer {
  const nonce = freshNonce();
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  cipher.final(); // GCM is a stream mode: final() yields no bytes, only the tag
  return Buffer.concat([nonce, body, cipher.getAuthTag()], NONCE_BYTES + body.length + TAG_BYTES);
}

/**
 * Opens what `aeadSeal` produced.
 * @throws IntegrityError naming `what` when the bytes were changed, are too short, or were sealed
 *   under another key or aad.
 */
export function aeadOpen(key: Buffer | KeyObject, sealed: Buffer, aad: Buffer, what = 'sealed object'): Buffer {
  if (sealed.length < AEAD_OVERHEAD) throw new IntegrityError(`${what}: ${sealed.length} bytes, too short to be sealed`);
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  const body = decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES));
  try {
    decipher.final(); // only checks the tag: GCM's plaintext is all in `body`, returned without a copy
    return body;
  } catch (err) {
    throw new IntegrityError(`${what}: authentication failed (changed, or sealed under another key)`, { cause: err });
  }
}
