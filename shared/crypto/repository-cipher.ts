import type { Repository } from '../catalog/repository.js';
import { InvalidInputError } from '../errors.js';
import { AeadBlobCipher } from './aead-cipher.js';
import type { BlobCipher } from './blob-cipher.js';
import { unlockRepository } from './repository-keys.js';

/**
 * The one `BlobCipher` of `repository`, for the formats that store shared blobs: an encrypted
 * repository's AEAD cipher (AES-256-GCM under its data key, ids under its id key), unlocked with
 * the worker's configured key sources (`repository.keySources`).
 *
 * A plain repository's cipher is the chunked store's (`plain-cipher.ts`, another branch): until
 * it is merged this refuses plain repositories; the merge replaces that line with it.
 * @throws InvalidInputError when the repository cannot be unlocked (`unlockRepository`).
 */
export async function repositoryCipher(repository: Repository, signal?: AbortSignal): Promise<BlobCipher> {
  const key = await unlockRepository(repository, { signal });
  if (key) return new AeadBlobCipher(key.keyId, key.dataKey, key.idKey);
  throw new InvalidInputError(`repository ${repository.name}: not encrypted, and the plain blob cipher is not part of this build`);
}
