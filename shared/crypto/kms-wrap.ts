import type { KMSClient } from '@aws-sdk/client-kms';
import { errorMessage, SnapworkerError } from '../errors.js';

/** KMS errors that mean "not this key / not this ciphertext", as opposed to KMS being unreachable. */
const NOT_THIS_KEY = new Set([
  'IncorrectKeyException',
  'InvalidCiphertextException',
  'NotFoundException',
  'AccessDeniedException',
  'InvalidKeyUsageException',
  // A disabled or deleted key: the crypto-shredding of a KMS-wrapped repository.
  'DisabledException',
  'KMSInvalidStateException',
]);

/**
 * KMS calls for envelope encryption: the repository key material (a few hundred bytes, under
 * KMS's 4 KiB limit) is encrypted by the KMS key itself, bound to an encryption context, so the
 * plaintext material only ever exists on workers that may call Decrypt (AWS KMS developer guide,
 * "Envelope encryption"). Region and endpoint: the key ARN's region, else the AWS SDK's default
 * chain (`AWS_REGION`; `AWS_ENDPOINT_URL_KMS` or `AWS_ENDPOINT_URL` for another endpoint).
 */
async function client(kmsKeyId: string): Promise<{ kms: KMSClient; sdk: typeof import('@aws-sdk/client-kms') }> {
  // Loaded on first use: only repositories with a kms: key source need the SDK.
  const sdk = await import('@aws-sdk/client-kms');
  const arnRegion = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):/.exec(kmsKeyId)?.[1];
  return { kms: new sdk.KMSClient({ ...(arnRegion ? { region: arnRegion } : {}), maxAttempts: 3 }), sdk };
}

/**
 * Encrypts `plaintext` under KMS key `kmsKeyId`.
 * @throws SnapworkerError (retryable) naming the key when KMS refuses or cannot be reached.
 */
export async function kmsEncrypt(kmsKeyId: string, plaintext: Buffer, context: Record<string, string>, signal?: AbortSignal): Promise<Buffer> {
  const { kms, sdk } = await client(kmsKeyId);
  try {
    const out = await kms.send(new sdk.EncryptCommand({ KeyId: kmsKeyId, Plaintext: plaintext, EncryptionContext: context }), { abortSignal: signal });
    if (!out.CiphertextBlob) throw new Error('no CiphertextBlob in the answer');
    return Buffer.from(out.CiphertextBlob);
  } catch (err) {
    throw new SnapworkerError(`kms: encrypt with ${kmsKeyId}: ${errorMessage(err)}`, { cause: err });
  } finally {
    kms.destroy();
  }
}

/**
 * Decrypts what `kmsEncrypt` produced; resolves undefined when KMS says this ciphertext is not
 * for this key (or this worker may not use it), so the caller tries its next key.
 * @throws SnapworkerError (retryable) when KMS cannot be reached or fails otherwise.
 */
export async function kmsDecrypt(kmsKeyId: string, ciphertext: Buffer, context: Record<string, string>, signal?: AbortSignal): Promise<Buffer | undefined> {
  const { kms, sdk } = await client(kmsKeyId);
  try {
    const out = await kms.send(new sdk.DecryptCommand({ KeyId: kmsKeyId, CiphertextBlob: ciphertext, EncryptionContext: context }), { abortSignal: signal });
    if (!out.Plaintext) throw new Error('no Plaintext in the answer');
    return Buffer.from(out.Plaintext);
  } catch (err) {
    if (err instanceof Error && NOT_THIS_KEY.has(err.name)) return undefined;
    throw new SnapworkerError(`kms: decrypt with ${kmsKeyId}: ${errorMessage(err)}`, { cause: err });
  } finally {
    kms.destroy();
  }
}
