import type { WorkerConfig } from '../../shared/config.js';
import { AbortedError, InvalidInputError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logging.js';
import { exportSnapshot } from '../../shared/pipeline/export-snapshot.js';
import { nullProgress } from '../../shared/progress.js';
import { JobRuntime } from '../job-runner.js';
import type { CliOptions } from './flags.js';
import { parseLabels } from './options.js';
import { untilInterrupted } from './interrupt.js';

/**
 * `export <snapshot>`: the snapshot, in any format, as a format-v1 archive (tar.zst) on stdout,
 * checked as it is read (shared/pipeline/export-snapshot.ts). Refuses a terminal as stdout.
 */
export async function runExportCommand(ref: string, options: CliOptions, config: WorkerConfig, logger: Logger): Promise<number> {
  if (process.stdout.isTTY) throw new InvalidInputError('export: writes a tar.zst archive to stdout; redirect it to a file or a pipe');
  const runtime = new JobRuntime(config, logger);
  const controller = new AbortController();
  try {
    const repository = await runtime.existingRepository(options.repo);
    const record = await repository.resolve(ref, { source: options.source, labels: parseLabels(options.label) });
    const work = exportSnapshot({
      repository,
      record,
      output: process.stdout,
      signal: controller.signal,
      progress: nullProgress,
      sealKeys: runtime.sealKeys(),
      level: config.compressionLevel,
      threads: config.zstdThreads,
    });
    await untilInterrupted(work, () => {
      controller.abort();
      return new AbortedError('export: interrupted');
    }, { waitForWork: true });
    // Everything written must reach the pipe before the exit code says it is whole.
    await new Promise<void>((resolve, reject) => process.stdout.write('', (err) => (err ? reject(err) : resolve())));
    return 0;
  } finally {
    await runtime.close();
  }
}
