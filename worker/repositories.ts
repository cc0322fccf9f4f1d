import { Repository } from '../shared/catalog/repository.js';
import type { KeySource } from '../shared/crypto/key-source.js';
import { InvalidInputError } from '../shared/errors.js';
import { driverKindOf, openDriver } from '../shared/storage/open-driver.js';
import type { StorageObserver } from '../shared/storage/storage-driver.js';

/**
 * The repositories a worker knows, by name, each opened once on first use. A name is all job
 * data may carry; where a repository lives and how to reach it is worker config.
 */
export class RepositoryRegistry {
  private readonly open = new Map<string, Repository>();
  // A Map, not the config record: a name from job data or the command line such as
  // "__proto__", "constructor" or "toString" must find nothing, not a property of Object.
  private readonly uris: ReadonlyMap<string, string>;

  /**
   * @param uris name → repository URI (own properties only)
   * @param defaultName used when a job names no repository
   * @param observerFor metrics hook per driver kind
   * @param keys name → where its key-encryption keys are (encrypted repositories only)
   */
  constructor(
    uris: Record<string, string>,
    private readonly defaultName: string,
    private readonly observerFor?: (driverKind: string) => StorageObserver,
    private readonly keys: Record<string, readonly KeySource[]> = {},
  ) {
    this.uris = new Map(Object.entries(uris));
  }

  /**
   * The repository called `name` (default one when omitted).
   * @throws InvalidInputError (never retried) for a name that is not configured.
   */
  get(name: string | undefined): Repository {
    const key = name ?? this.defaultName;
    const existing = this.open.get(key);
    if (existing) return existing;
    const uri = this.uris.get(key);
    if (uri === undefined) {
      throw new InvalidInputError(`unknown repository ${JSON.stringify(key)} (configured: ${[...this.uris.keys()].join(', ') || 'none'})`);
    }
    const kind = driverKindOf(uri);
    const keySources = Object.hasOwn(this.keys, key) ? this.keys[key] : undefined;
    const repository = new Repository(key, openDriver(uri, { observer: kind === undefined ? undefined : this.observerFor?.(kind) }), undefined, keySources);
    this.open.set(key, repository);
    return repository;
  }

  async close(): Promise<void> {
    const closing = [...this.open.values()].map((r) => r.close());
    this.open.clear();
    await Promise.allSettled(closing);
  }
}
