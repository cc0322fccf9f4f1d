import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { IntegrityError } from '../errors.js';

/**
 * The secret keys of an encrypted repository, made once by `init` and never changed: every key
 * object (`keys/<id>`) wraps these same bytes under a different key-encryption key, so adding or
 * removing a key rewrites no data (restic's master key, kopia's format encryption key).
 */
export interface RepositoryKey {
  /** 16 hex digits, random: named in `config.json` and in every record encrypted under it. */
  keyId: string;
  /** 32 bytes: the AEAD key of the chunked format's blobs. */
  dataKey: Buffer;
  /** 32 bytes: the HMAC key of blob ids. */
  idKey: Buffer;
  /** `AGE-SECRET-KEY-1…`: the X25519 identity encrypted archives are read with. */
  ageIdentity: string;
  /** `age1…`: its recipient, what archives are encrypted to (public). */
  ageRecipient: string;
}

const materialSchema = z.object({
  v: z.literal(1),
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  dataKey: z.base64().refine((text) => Buffer.from(text, 'base64').length === 32, 'must be 32 bytes'),
  idKey: z.base64().refine((text) => Buffer.from(text, 'base64').length === 32, 'must be 32 bytes'),
  ageIdentity: z.string().regex(/^AGE-SECRET-KEY-1[0-9A-Z]+$/),
});

/** Fresh random key material for a new repository. */
export async function generateRepositoryKey(): Promise<RepositoryKey> {
  const { generateX25519Identity, identityToRecipient } = await ageKeys();
  const ageIdentity = await generateX25519Identity();
  return {
    keyId: randomBytes(8).toString('hex'),
    dataKey: randomBytes(32),
    idKey: randomBytes(32),
    ageIdentity,
    ageRecipient: await identityToRecipient(ageIdentity),
  };
}

/** The bytes a key object wraps (JSON; only ever stored encrypted). */
export function encodeRepositoryKey(key: RepositoryKey): Buffer {
  return Buffer.from(
    JSON.stringify({ v: 1, keyId: key.keyId, dataKey: key.dataKey.toString('base64'), idKey: key.idKey.toString('base64'), ageIdentity: key.ageIdentity }),
  );
}

/**
 * Reads what `encodeRepositoryKey` wrote, once unwrapped (so authenticated).
 * @throws IntegrityError naming `what` when it is not key material.
 */
export async function decodeRepositoryKey(bytes: Buffer, what: string): Promise<RepositoryKey> {
  let parsed: z.infer<typeof materialSchema>;
  try {
    parsed = materialSchema.parse(JSON.parse(bytes.toString('utf8')));
  } catch (err) {
    throw new IntegrityError(`${what}: unwrapped bytes are not repository key material`, { cause: err });
  }
  return {
    keyId: parsed.keyId,
    dataKey: Buffer.from(parsed.dataKey, 'base64'),
    idKey: Buffer.from(parsed.idKey, 'base64'),
    ageIdentity: parsed.ageIdentity,
    ageRecipient: await (await ageKeys()).identityToRecipient(parsed.ageIdentity),
  };
}

/** age's key functions, loaded on first use: plain repositories never need them. */
function ageKeys(): Promise<typeof import('age-encryption')> {
  return import('age-encryption');
}
