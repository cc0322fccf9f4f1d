import type { Repository } from '../catalog/repository.js';
import { InvalidInputError } from '../errors.js';
import { AeadBlobCipher } from './aead-cipher.js';
import type { BlobCipher } from './blob-cipher.js';
import { plainCipherOf, readChunkedStoreConfig } from '../formats/chunked/store/store-config.js';
import { unlockRepository } from './repository-keys.js';

/**
 * The one `BlobCipher` of `repository`, for the formats that store shared blobs: an encrypted
 * repository's AEAD cipher (AES-256-GCM under its data key, ids under its id key), unlocked with
 * the worker's configured key sources (`repository.keySources`).
 *
 * A plain repository's cipher is the plain one (`plain-cipher.ts`: keyed ids, no sealing) under
 * the id key its chunked settings in `config.json` hold.
 * @throws InvalidInputError when the repository cannot be unlocked (`unlockRepository`), when
 *   this worker has keys configured for a repository that is not encrypted (they would silently
 *   not be used), or when a plain repository has no chunked settings.
 */
export async function repositoryCipher(repository: Repository, signal?: AbortSignal): Promise<BlobCipher> {
  const key = await unlockRepository(repository, { signal });
  if (key) return new AeadBlobCipher(key.keyId, key.dataKey, key.idKey);
  if (repository.keySources.length > 0) {
    throw new InvalidInputError(
      `repository ${repository.name}: keys are configured for it (SNAPWORKER_REPOSITORY_KEYS) but it was created without encryption; snapshots would be stored unencrypted — remove its keys from the configuration, or use a new repository`,
    );
  }
  return plainCipherOf(await readChunkedStoreConfig(repository, { signal }), repository.name);
}
