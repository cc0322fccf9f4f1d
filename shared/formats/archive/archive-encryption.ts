import type { Transform } from 'node:stream';
import { archiveOf } from './archive-of.js';
import type { Repository } from '../../catalog/repository.js';
import type { SnapshotRecord } from '../../catalog/snapshot-record.js';
import { IntegrityError, InvalidInputError } from '../../errors.js';
import { AgeDecryptStream, AgeEncryptStream } from '../../crypto/age-stream.js';
import { requireUnlocked, unlockRepository } from '../../crypto/repository-keys.js';

/** What an encrypted archive's name gets after its compression's (`archive.tar.zst.age`). */
export const AGE_SUFFIX = '.age';

/** How a new archive is encrypted in this repository: the outermost stream and the record's key id. */
export interface ArchiveEncryption {
  keyId: string;
  /** A fresh encrypting stream: compressed archive in, age file out. */
  encrypt(): Transform;
}

/**
 * Encryption for a new archive: undefined in a plain repository. An encrypted repository's
 * archives are age files to its X25519 recipient (docs/encryption.md).
 * @throws InvalidInputError when the repository cannot be unlocked, or when this worker has keys
 *   configured for a repository that is not encrypted (they would silently not be used).
 */
export async function archiveEncryption(repository: Repository, signal: AbortSignal): Promise<ArchiveEncryption | undefined> {
  const key = await unlockRepository(repository, { signal });
  if (!key) {
    if (repository.keySources.length > 0) {
      throw new InvalidInputError(
        `repository ${repository.name}: keys are configured for it (SNAPWORKER_REPOSITORY_KEYS) but it was created without encryption; snapshots would be stored unencrypted — remove its keys from the configuration, or use a new repository`,
      );
    }
    return undefined;
  }
  return { keyId: key.keyId, encrypt: () => new AgeEncryptStream(key.ageRecipient, key.ageIdentity) };
}

/**
 * The decrypting stream for `record`'s archive, or undefined when it is stored in the clear.
 * @throws InvalidInputError when the repository cannot be unlocked; IntegrityError when the
 *   record names another key than the repository's, or none in an encrypted repository.
 */
export async function archiveDecryption(repository: Repository, record: SnapshotRecord, signal: AbortSignal): Promise<Transform | undefined> {
  if (record.keyId === undefined) {
    // Every snapshot of an encrypted repository is encrypted: a record without a key is forged
    // (or edited), and its plaintext archive must not be restored as ours.
    if (await repository.encryption({ signal })) throw new IntegrityError(`snapshot ${record.id}: its record names no key, but repository ${repository.name} is encrypted`);
    return undefined;
  }
  const key = await requireUnlocked(repository, { signal });
  if (key.keyId !== record.keyId) {
    throw new IntegrityError(`snapshot ${record.id}: encrypted under key ${record.keyId}, but repository ${repository.name}'s key is ${key.keyId}`);
  }
  return new AgeDecryptStream(key.ageIdentity, `snapshot ${record.id} (${archiveOf(record).key})`);
}
