import { z } from 'zod';
import { IntegrityError } from '../errors.js';

/** Where key objects live in a repository: `keys/<key object id>`. */
export const KEYS = 'keys/';

/** scrypt limits a key object may ask for: a damaged or hostile one must not make us use gigabytes. */
const SCRYPT_LOG_N = { min: 14, max: 20 } as const;

const kekSchema = z.discriminatedUnion('kind', [
  /** A 32-byte key from an env variable or file; the KEK is HKDF-SHA256 of it with `salt`. */
  z.object({ kind: z.literal('key'), salt: z.base64() }),
  /** A passphrase from an env variable or file; the KEK is scrypt of it (RFC 7914). */
  z.object({
    kind: z.literal('passphrase'),
    kdf: z.object({
      name: z.literal('scrypt'),
      logN: z.number().int().min(SCRYPT_LOG_N.min).max(SCRYPT_LOG_N.max),
      r: z.number().int().min(1).max(32),
      p: z.number().int().min(1).max(16),
      salt: z.base64(),
    }),
  }),
  /** An AWS KMS key wraps the material itself (KMS Encrypt, with an encryption context). */
  z.object({ kind: z.literal('kms'), kmsKeyId: z.string().min(1).max(2048) }),
]);

/**
 * `keys/<id>`: one key-encryption key's wrapping of the repository key material
 * (docs/encryption.md, "Key objects"). Nothing in it is secret without the KEK: `wrapped` is
 * AES-256-GCM (or KMS) ciphertext bound to the repository id and this object's id.
 */
export const keyObjectSchema = z.object({
  v: z.literal(1),
  format: z.literal('snapworker-key'),
  /** This object's id: 16 hex digits, its name under `keys/`. */
  id: z.string().regex(/^[0-9a-f]{16}$/),
  /** `config.json`'s `id`: a key object copied into another repository does not open there. */
  repositoryId: z.string().regex(/^[0-9a-f]{16}$/),
  kek: kekSchema,
  /** Base64 of the wrapped material (`key-material.ts`). */
  wrapped: z.base64().max(16384),
  createdAt: z.string(),
  label: z.string().max(200).optional(),
});

export type KeyObject = z.infer<typeof keyObjectSchema>;
export type KeyEncryption = KeyObject['kek'];

/** The key of a key object by its id. */
export function keyObjectKey(id: string): string {
  return `${KEYS}${id}`;
}

/**
 * Parses a stored key object (untrusted input).
 * @throws IntegrityError naming the object when it is not one, or is stored under another id.
 */
export function parseKeyObject(text: string, key: string): KeyObject {
  let parsed: KeyObject;
  try {
    parsed = keyObjectSchema.parse(JSON.parse(text));
  } catch (err) {
    throw new IntegrityError(`key object ${key}: not a snapworker key (${err instanceof SyntaxError ? 'not JSON' : 'fields do not match'})`, { cause: err });
  }
  if (keyObjectKey(parsed.id) !== key) throw new IntegrityError(`key object ${key}: names itself ${parsed.id}`);
  return parsed;
}

/** What a wrapping is bound to (the AEAD's aad, KMS's encryption context). */
export function wrappingContext(object: Pick<KeyObject, 'repositoryId' | 'id'>): Record<string, string> {
  return { snapworkerRepository: object.repositoryId, snapworkerKey: object.id };
}
