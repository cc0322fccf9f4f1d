import type { Logger } from 'pino';
import type { Repository } from '../catalog/repository.js';
import { INDEX_PREFIX, PACKS_PREFIX } from '../formats/chunked/store/store-layout.js';
import { RepeatingErrorLog } from '../lifecycle/repeating-error-log.js';
import type { WorkerMetrics } from './metrics.js';
import { samplePeriodically, type PeriodicSampler } from './periodic-sampler.js';

export interface RepositorySamplerOptions {
  /** Time between samples. Default 300 000 ms: a sample lists every pack, which is not free on S3. */
  intervalMs?: number;
  /** Where sampling failures are logged (at `warn`, once per state); the sampler keeps going. */
  logger?: Logger;
}

/** What one sample found in a chunked repository: objects and their bytes, as stored. */
export interface RepositorySize {
  packs: number;
  packBytes: number;
  indexObjects: number;
  indexBytes: number;
}

const DEFAULT_INTERVAL_MS = 300_000;

/**
 * Samples the size of each named chunked repository (its packs and pack index objects, counted
 * and summed from one listing) into `metrics`, now and then every `intervalMs` (`samplePeriodically`):
 * never per scrape or per request. Repositories in the archive format, not
 * initialised, or failing to list are skipped and keep their previous values; nothing throws.
 * Every worker of a fleet reports the same figures: aggregate with `max`, never `sum`.
 */
export function startRepositorySampler(names: readonly string[], open: (name: string) => Repository, metrics: WorkerMetrics, options: RepositorySamplerOptions = {}): PeriodicSampler {
  const failures = new Map(names.map((name) => [name, options.logger && new RepeatingErrorLog(options.logger, `repository sampler: sample repository ${name}`)]));
  const sampleAll = async (signal: AbortSignal): Promise<void> => {
    for (const name of names) {
      try {
        const size = await sampleRepository(open(name), signal);
        if (size) metrics.setRepositorySize(name, size);
        failures.get(name)?.recovered();
      } catch (err) {
        if (signal.aborted) return;
        failures.get(name)?.error(err);
      }
    }
  };
  return samplePeriodically(sampleAll, options.intervalMs ?? DEFAULT_INTERVAL_MS, 'repository sampler');
}

/** One repository's size, or undefined when it is not a chunked repository (or does not exist yet). */
export async function sampleRepository(repository: Repository, signal?: AbortSignal): Promise<RepositorySize | undefined> {
  if (!(await repository.configuration({ signal }))?.chunked) return undefined;
  const storage = repository.blobStorage();
  const size: RepositorySize = { packs: 0, packBytes: 0, indexObjects: 0, indexBytes: 0 };
  for await (const object of storage.list(PACKS_PREFIX, { signal })) {
    size.packs += 1;
    size.packBytes += object.size;
  }
  for await (const object of storage.list(INDEX_PREFIX, { signal })) {
    size.indexObjects += 1;
    size.indexBytes += object.size;
  }
  return size;
}
