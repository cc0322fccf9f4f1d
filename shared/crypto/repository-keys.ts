import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Repository } from '../catalog/repository.js';
import { readText } from '../catalog/read-text.js';
import { IntegrityError, InvalidInputError, NotFoundError } from '../errors.js';
import { unwrapMaterial, wrapMaterial } from './kek.js';
import { decodeRepositoryKey, encodeRepositoryKey, generateRepositoryKey, type RepositoryKey } from './key-material.js';
import { keyObjectKey, KEYS, parseKeyObject, type KeyObject } from './key-object.js';
import { describeKeySource, type KeySource } from './key-source.js';

/** A key object as `key ls` shows it: nothing secret. */
export interface KeySummary {
  id: string;
  /** `key` (a 32-byte key from env or file), `passphrase` (scrypt), or `kms`. */
  kind: KeyObject['kek']['kind'];
  kmsKeyId?: string;
  createdAt: string;
  label?: string;
}

interface Options {
  signal?: AbortSignal;
}

/** Unlocked keys by repository: one unlock per process (a passphrase's scrypt costs ~0.1 s). */
const unlocked = new WeakMap<Repository, Promise<RepositoryKey | undefined>>();

/**
 * Makes the key material of a new repository and stores one key object per source. Called by
 * `Repository.init` before it writes `config.json` (which names the material's key id).
 * @throws InvalidInputError when a source cannot be used (nothing of the repository's config is written).
 */
export async function createRepositoryKeys(
  repository: Repository,
  repositoryId: string,
  sources: readonly KeySource[],
  options: Options & { label?: string },
): Promise<RepositoryKey> {
  const key = await generateRepositoryKey();
  for (const source of sources) await storeKeyObject(repository, repositoryId, key, source, options);
  unlocked.set(repository, Promise.resolve(key));
  return key;
}

/**
 * The key material of `repository`, unlocked with its configured key sources
 * (`repository.keySources`) once per process; undefined for a repository that is not encrypted.
 * Each source is tried against each key object, as restic tries every key file.
 * @throws InvalidInputError (one line, never retried) when the repository is encrypted and no
 *   source is configured, or none opens any of its keys (wrong key, or the key was removed).
 */
export function unlockRepository(repository: Repository, options: Options = {}): Promise<RepositoryKey | undefined> {
  let pending = unlocked.get(repository);
  if (!pending) {
    pending = unlock(repository, options);
    unlocked.set(repository, pending);
    pending.catch(() => unlocked.delete(repository)); // a KMS outage now must not stick
  }
  return pending;
}

async function unlock(repository: Repository, options: Options): Promise<RepositoryKey | undefined> {
  const encryption = await repository.encryption(options);
  if (!encryption) return undefined;
  const sources = repository.keySources;
  if (sources.length === 0) {
    throw new InvalidInputError(`repository ${repository.name} is encrypted (key ${encryption.keyId}); no key source is configured for it on this host: ${keyConfigurationHint(repository.name)}`);
  }
  const objects = await readKeyObjects(repository, options);
  for (const source of sources) {
    for (const object of objects) {
      const material = await unwrapMaterial(source, object, options.signal);
      if (!material) continue;
      const key = await decodeRepositoryKey(material, `key object ${keyObjectKey(object.id)}`);
      // A key object of an earlier, interrupted init may still open: only the named material counts.
      if (key.keyId === encryption.keyId) return key;
    }
  }
  throw new InvalidInputError(
    `repository ${repository.name}: none of its ${objects.length} keys opens with the configured key sources (${sources.map(describeKeySource).join(', ')}): wrong key, or its key object was removed`,
  );
}

/**
 * What to configure so that this host unlocks repository `name` (docs/encryption.md, "Key
 * sources"): keys are found by configured repository name, never given per command, so a
 * repository named by its URI (`file:///…`, `s3://…`; the name is then the URI) needs a name
 * first, under which the URI finds its keys again.
 */
export function keyConfigurationHint(name: string): string {
  const example = `["file:/abs/path/to/key"]`;
  if (!name.includes('://')) return `list its key sources in SNAPWORKER_REPOSITORY_KEYS, e.g. SNAPWORKER_REPOSITORY_KEYS='{"${name}":${example}}'`;
  return (
    `name it in SNAPWORKER_REPOSITORIES and list its key sources under that name in SNAPWORKER_REPOSITORY_KEYS, ` +
    `e.g. SNAPWORKER_REPOSITORIES='{"default":"${name}"}' SNAPWORKER_REPOSITORY_KEYS='{"default":${example}}' (then this URI, or its name, unlocks)`
  );
}

/**
 * Wraps the repository's key material under `source` too (`key add`): unlocked first with the
 * configured sources. Resolves with the new key object.
 * @throws InvalidInputError when the repository is not encrypted or cannot be unlocked, or `source` cannot be used.
 */
export async function addRepositoryKey(repository: Repository, source: KeySource, options: Options & { label?: string } = {}): Promise<KeySummary> {
  const key = await requireUnlocked(repository, options);
  const repositoryId = await repository.repositoryId(options);
  if (repositoryId === undefined) throw new IntegrityError(`repository ${repository.name}: config.json has no id`);
  return summaryOf(await storeKeyObject(repository, repositoryId, key, source, options));
}

/**
 * Deletes key object `id` (`key rm`). Deleting the last one makes every snapshot of the
 * repository unreadable for good (crypto-shredding): refused unless `allowLast`.
 * @throws InvalidInputError for an unknown id, or the last key without `allowLast`.
 */
export async function removeRepositoryKey(repository: Repository, id: string, options: Options & { allowLast?: boolean } = {}): Promise<void> {
  const objects = await listKeyObjectKeys(repository, options);
  if (!/^[0-9a-f]{16}$/.test(id) || !objects.includes(keyObjectKey(id))) {
    throw new InvalidInputError(`repository ${repository.name}: no key ${JSON.stringify(id)} ("snapworker key ls" lists them)`);
  }
  if (objects.length === 1 && !options.allowLast) {
    throw new InvalidInputError(
      `repository ${repository.name}: ${id} is its last key; without it no snapshot can ever be read again (give --shred to destroy it on purpose)`,
    );
  }
  await repository.keyStorage().delete(keyObjectKey(id), options);
  unlocked.delete(repository);
}

/**
 * The repository's key objects, oldest first.
 * @throws IntegrityError when a key object is damaged.
 */
export async function listRepositoryKeys(repository: Repository, options: Options = {}): Promise<KeySummary[]> {
  return (await readKeyObjects(repository, options)).map(summaryOf);
}

/**
 * The repository's key material, for `key export-age` and the formats.
 * @throws InvalidInputError when the repository is not encrypted, or cannot be unlocked.
 */
export async function requireUnlocked(repository: Repository, options: Options = {}): Promise<RepositoryKey> {
  const key = await unlockRepository(repository, options);
  if (!key) throw new InvalidInputError(`repository ${repository.name} is not encrypted (it was created without keys)`);
  return key;
}

async function storeKeyObject(repository: Repository, repositoryId: string, key: RepositoryKey, source: KeySource, options: Options & { label?: string }): Promise<KeyObject> {
  const id = randomBytes(8).toString('hex');
  const { kek, wrapped } = await wrapMaterial(source, encodeRepositoryKey(key), { repositoryId, id }, options.signal);
  const object: KeyObject = {
    v: 1,
    format: 'snapworker-key',
    id,
    repositoryId,
    kek,
    wrapped: wrapped.toString('base64'),
    createdAt: new Date().toISOString(),
    ...(options.label ? { label: options.label } : {}),
  };
  const body = Buffer.from(JSON.stringify(object, null, 2) + '\n');
  await repository.keyStorage().put(keyObjectKey(id), Readable.from([body]), { signal: options.signal, size: body.length });
  return object;
}

async function listKeyObjectKeys(repository: Repository, options: Options): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of repository.keyStorage().list(KEYS, options)) if (/^keys\/[0-9a-f]{16}$/.test(object.key)) keys.push(object.key);
  return keys.sort();
}

async function readKeyObjects(repository: Repository, options: Options): Promise<KeyObject[]> {
  const objects: KeyObject[] = [];
  for (const key of await listKeyObjectKeys(repository, options)) {
    try {
      objects.push(parseKeyObject(await readText(await repository.keyStorage().get(key, options), `key object ${key}`, 64 * 1024), key));
    } catch (err) {
      if (err instanceof NotFoundError) continue; // removed while listing
      throw err;
    }
  }
  return objects.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
}

function summaryOf(object: KeyObject): KeySummary {
  return {
    id: object.id,
    kind: object.kek.kind,
    ...(object.kek.kind === 'kms' ? { kmsKeyId: object.kek.kmsKeyId } : {}),
    createdAt: object.createdAt,
    ...(object.label ? { label: object.label } : {}),
  };
}
