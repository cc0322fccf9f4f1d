import { readFile } from 'node:fs/promises';
import { hkdfSync, randomBytes, scrypt, type ScryptOptions } from 'node:crypto';
import { errorMessage, IntegrityError, InvalidInputError } from '../errors.js';
import { aeadOpen, aeadSeal } from './aead.js';
import { describeKeySource, type KeySource } from './key-source.js';
import { wrappingContext, type KeyEncryption, type KeyObject } from './key-object.js';
import { kmsDecrypt, kmsEncrypt } from './kms-wrap.js';

/** scrypt cost for new passphrase keys: 2^15 × r 8 = 32 MiB and about 0.1 s per try (restic's order). */
const SCRYPT = { logN: 15, r: 8, p: 1 } as const;
const MIN_PASSPHRASE = 8;

type Secret = { kind: 'key'; key: Buffer } | { kind: 'passphrase'; passphrase: Buffer };

/**
 * Reads an env or file source's secret, now (never kept): 64 hex digits or base64 of exactly 32
 * bytes is a key, anything else a passphrase.
 * @throws InvalidInputError naming the source (never the value) when it is unset, unreadable or too short.
 */
async function readSecret(source: Exclude<KeySource, { kind: 'kms' }>): Promise<Secret> {
  let text: string;
  if (source.kind === 'env') {
    const value = Object.hasOwn(process.env, source.variable) ? process.env[source.variable] : undefined;
    if (value === undefined || value === '') throw new InvalidInputError(`key source env:${source.variable}: the variable is not set`);
    text = value;
  } else {
    try {
      text = (await readFile(source.path, 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      throw new InvalidInputError(`key source file:${source.path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`, { cause: err });
    }
  }
  if (/^[0-9a-fA-F]{64}$/.test(text)) return { kind: 'key', key: Buffer.from(text, 'hex') };
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) return { kind: 'key', key: Buffer.from(text, 'base64') };
  if (text.length < MIN_PASSPHRASE) {
    throw new InvalidInputError(`key source ${describeKeySource(source)}: neither a key (64 hex digits or base64 of 32 bytes) nor a passphrase of at least ${MIN_PASSPHRASE} characters`);
  }
  return { kind: 'passphrase', passphrase: Buffer.from(text, 'utf8') };
}

function scryptKey(passphrase: Buffer, salt: Buffer, params: { logN: number; r: number; p: number }): Promise<Buffer> {
  const N = 2 ** params.logN;
  const options: ScryptOptions = { N, r: params.r, p: params.p, maxmem: 128 * N * params.r * params.p + 1024 * 1024 };
  return new Promise((resolve, reject) => scrypt(passphrase, salt, 32, options, (err, key) => (err ? reject(err) : resolve(key))));
}

function hkdfKey(key: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', key, salt, 'snapworker key-encryption key', 32));
}

function aadOf(object: Pick<KeyObject, 'repositoryId' | 'id'>): Buffer {
  return Buffer.from(`snapworker-key v1\0${JSON.stringify(wrappingContext(object))}`);
}

/**
 * Wraps `material` under `source`'s key-encryption key for key object `object`.
 * @throws InvalidInputError when the source's secret is missing or unusable; SnapworkerError from KMS.
 */
export async function wrapMaterial(
  source: KeySource,
  material: Buffer,
  object: Pick<KeyObject, 'repositoryId' | 'id'>,
  signal?: AbortSignal,
): Promise<{ kek: KeyEncryption; wrapped: Buffer }> {
  if (source.kind === 'kms') {
    return { kek: { kind: 'kms', kmsKeyId: source.keyId }, wrapped: await kmsEncrypt(source.keyId, material, wrappingContext(object), signal) };
  }
  const secret = await readSecret(source);
  const salt = randomBytes(16);
  if (secret.kind === 'key') {
    return { kek: { kind: 'key', salt: salt.toString('base64') }, wrapped: aeadSeal(hkdfKey(secret.key, salt), material, aadOf(object)) };
  }
  const kek = await scryptKey(secret.passphrase, salt, SCRYPT);
  return {
    kek: { kind: 'passphrase', kdf: { name: 'scrypt', ...SCRYPT, salt: salt.toString('base64') } },
    wrapped: aeadSeal(kek, material, aadOf(object)),
  };
}

/**
 * Unwraps key object `object` with `source`; resolves undefined when the source is not this
 * object's key (another kind, another KMS key, or a secret that fails authentication).
 * @throws InvalidInputError when the source's secret is missing or unusable; SnapworkerError from KMS.
 */
export async function unwrapMaterial(source: KeySource, object: KeyObject, signal?: AbortSignal): Promise<Buffer | undefined> {
  const wrapped = Buffer.from(object.wrapped, 'base64');
  if (source.kind === 'kms') {
    if (object.kek.kind !== 'kms') return undefined;
    return kmsDecrypt(source.keyId, wrapped, wrappingContext(object), signal);
  }
  if (object.kek.kind === 'kms') return undefined;
  const secret = await readSecret(source);
  let kek: Buffer;
  if (secret.kind === 'key' && object.kek.kind === 'key') kek = hkdfKey(secret.key, Buffer.from(object.kek.salt, 'base64'));
  else if (secret.kind === 'passphrase' && object.kek.kind === 'passphrase') kek = await scryptKey(secret.passphrase, Buffer.from(object.kek.kdf.salt, 'base64'), object.kek.kdf);
  else return undefined;
  try {
    return aeadOpen(kek, wrapped, aadOf(object));
  } catch (err) {
    if (err instanceof IntegrityError) return undefined;
    throw err;
  }
}
