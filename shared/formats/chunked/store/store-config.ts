import { randomBytes } from 'node:crypto';
import { IntegrityError, InvalidInputError } from '../../../errors.js';
import type { SignalOptions } from '../../../storage/storage-driver.js';
import type { Repository } from '../../../catalog/repository.js';
import { ID_KEY_BYTES, PlainCipher } from '../../../crypto/plain-cipher.js';
import { chunkerParams, DEFAULT_CHUNKER_PARAMS } from './chunker.js';

/**
 * The chunked store's settings, kept in `config.json` under `chunked` (docs/chunked-format.md,
 * "config.json"). Fixed at `init`: changing chunker sizes later would stop new snapshots from
 * deduplicating against old ones.
 */
export interface ChunkedStoreConfig {
  version: 1;
  /** Chunk sizes in bytes. */
  chunker: { min: number; avg: number; max: number };
  /**
   * The id key of an unencrypted repository, 64 hex characters (`PlainCipher`). Absent in an
   * encrypted repository, whose id key comes from its key envelope (issue 15).
   */
  idKey?: string;
}

/**
 * New settings for `Repository.init({ chunked })`: default chunker sizes (or `chunker`) and, for an
 * unencrypted repository (`plain`, the default), a fresh random id key.
 * @throws InvalidInputError for bad chunker sizes.
 */
export function newChunkedStoreConfig(options: { plain?: boolean; chunker?: { min: number; avg: number; max: number } } = {}): ChunkedStoreConfig {
  const { min, avg, max } = chunkerParams(options.chunker ?? DEFAULT_CHUNKER_PARAMS);
  return {
    version: 1,
    chunker: { min, avg, max },
    ...((options.plain ?? true) ? { idKey: randomBytes(ID_KEY_BYTES).toString('hex') } : {}),
  };
}

/**
 * The chunked store's settings of `repository`, checked.
 * @throws InvalidInputError when the repository has none (not initialised for the chunked format).
 * @throws IntegrityError when they are malformed.
 */
export async function readChunkedStoreConfig(repository: Repository, options?: SignalOptions): Promise<ChunkedStoreConfig> {
  const config = await repository.configuration(options);
  const chunked = config?.chunked;
  if (!chunked) throw new InvalidInputError(`repository ${repository.name}: not initialised for the chunked format (config.json has no "chunked" settings)`);
  return parseChunkedStoreConfig(chunked, `repository ${repository.name}: config.json "chunked"`);
}

/** Checks settings read from storage. @throws IntegrityError naming the bad field. */
export function parseChunkedStoreConfig(value: Record<string, unknown>, what: string): ChunkedStoreConfig {
  if (value.version !== 1) throw new IntegrityError(`${what}: version ${JSON.stringify(value.version)} is not supported`);
  const chunker = value.chunker as Record<string, unknown> | undefined;
  if (typeof chunker !== 'object' || chunker === null) throw new IntegrityError(`${what}: no chunker sizes`);
  let sizes: { min: number; avg: number; max: number };
  try {
    const { min, avg, max } = chunkerParams({ min: chunker.min as number, avg: chunker.avg as number, max: chunker.max as number });
    sizes = { min, avg, max };
  } catch (err) {
    throw new IntegrityError(`${what}: ${(err as Error).message}`, { cause: err });
  }
  if (value.idKey !== undefined && (typeof value.idKey !== 'string' || !/^[0-9a-f]{64}$/.test(value.idKey))) throw new IntegrityError(`${what}: idKey is not 64 hex characters`);
  return { version: 1, chunker: sizes, ...(value.idKey !== undefined ? { idKey: value.idKey as string } : {}) };
}

/**
 * The plain cipher of an unencrypted repository, from its id key.
 * @throws InvalidInputError when the settings carry no id key (an encrypted repository needs its keys).
 */
export function plainCipherOf(config: ChunkedStoreConfig, repositoryName: string): PlainCipher {
  if (!config.idKey) throw new InvalidInputError(`repository ${repositoryName}: its blobs are encrypted; configure its key`);
  return new PlainCipher(Buffer.from(config.idKey, 'hex'));
}
