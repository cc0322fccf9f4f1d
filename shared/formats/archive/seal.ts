import { createHmac, timingSafeEqual, type Hmac } from 'node:crypto';
import { z } from 'zod';
import { IntegrityError, InvalidInputError } from '../../errors.js';

/** A key that seals archives: `SHA256SUMS.seal` records `keyId` so a reader can pick the key. */
export interface SealKey {
  keyId: string;
  key: Buffer;
}

export const SEAL_ALGORITHM = 'HMAC-SHA256';

/** Shortest key accepted, in bytes: HMAC-SHA256 is only as strong as its key. */
export const MIN_SEAL_KEY_BYTES = 16;

/** Longest seal entry a reader accepts, in bytes (the document is about 150). */
export const MAX_SEAL_BYTES = 4096;

const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** `SHA256SUMS.seal`: one JSON object. */
export interface SealDocument {
  alg: typeof SEAL_ALGORITHM;
  keyId: string;
  /** Lower-case hex HMAC-SHA256 of the exact bytes of `SHA256SUMS`, keyed with the key named by keyId. */
  mac: string;
}

const sealSchema = z.object({
  alg: z.literal(SEAL_ALGORITHM),
  keyId: z.string().regex(KEY_ID),
  mac: z.string().regex(/^[0-9a-f]{64}$/),
});

/** Throws InvalidInputError unless the key id is printable and short and the key long enough. */
export function assertValidSealKey(seal: SealKey): void {
  if (!KEY_ID.test(seal.keyId)) throw new InvalidInputError(`archive seal: key id ${JSON.stringify(seal.keyId)}: letters, digits, ".", "_", ":", "-" (at most 128)`);
  if (seal.key.length < MIN_SEAL_KEY_BYTES) throw new InvalidInputError(`archive seal: key ${seal.keyId}: shorter than ${MIN_SEAL_KEY_BYTES} bytes`);
}

/** A running HMAC over the `SHA256SUMS` bytes, fed as they stream. */
export function createSealMac(key: Buffer): Hmac {
  return createHmac('sha256', key);
}

/** The `SHA256SUMS.seal` entry for a finished MAC. */
export function encodeSeal(keyId: string, mac: Buffer): Buffer {
  const document: SealDocument = { alg: SEAL_ALGORITHM, keyId, mac: mac.toString('hex') };
  return Buffer.from(JSON.stringify(document) + '\n');
}

/** Parses a `SHA256SUMS.seal` entry. Throws IntegrityError when it is not a valid seal document. */
export function decodeSeal(bytes: Buffer): SealDocument {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new IntegrityError('archive: entry SHA256SUMS.seal: not JSON', { cause: err });
  }
  const result = sealSchema.safeParse(value);
  if (!result.success) throw new IntegrityError(`archive: entry SHA256SUMS.seal: ${z.prettifyError(result.error).replace(/\n\s*/g, ' ')}`);
  return result.data;
}

/** True when the document's MAC equals `mac` (compared in constant time). */
export function sealMatches(document: SealDocument, mac: Buffer): boolean {
  const recorded = Buffer.from(document.mac, 'hex');
  return recorded.length === mac.length && timingSafeEqual(recorded, mac);
}
