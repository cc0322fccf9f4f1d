import { Repository } from '../shared/catalog/repository.js';
import { InvalidInputError } from '../shared/errors.js';
import { openDriver } from '../shared/storage/open-driver.js';
import type { StorageObserver } from '../shared/storage/storage-driver.js';

/**
 * The repositories a worker knows, by name, each opened once on first use. A name is all job
 * data may carry; where a repository lives and how to reach it is worker config.
 */
export class RepositoryRegistry {
  private readonly open = new Map<string, Repository>();

  /**
   * @param uris name → `file://` or `s3://` URI
   * @param defaultName used when a job names no repository
   * @param observerFor metrics hook per driver kind
   */
  constructor(
    private readonly uris: Record<string, string>,
    private readonly defaultName: string,
    private readonly observerFor?: (driverKind: string) => StorageObserver,
  ) {}

  /**
   * The repository called `name` (default one when omitted).
   * @throws InvalidInputError for an unknown name.
   */
  get(name: string | undefined): Repository {
    const key = name ?? this.defaultName;
    const existing = this.open.get(key);
    if (existing) return existing;
    const uri = this.uris[key];
    if (uri === undefined) {
      throw new InvalidInputError(`unknown repository "${key}" (configured: ${Object.keys(this.uris).join(', ') || 'none'})`);
    }
    const kind = uri.startsWith('s3:') ? 's3' : 'fs';
    const repository = new Repository(key, openDriver(uri, { observer: this.observerFor?.(kind) }));
    this.open.set(key, repository);
    return repository;
  }

  async close(): Promise<void> {
    const drivers = [...this.open.values()].map((r) => r.driver.close?.());
    this.open.clear();
    await Promise.allSettled(drivers);
  }
}
