import type { WorkerConfig } from '../../shared/config.js';
import { InvalidInputError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logging.js';
import { JobRuntime } from '../job-runner.js';
import { formatBytes } from '../progress-bar.js';
import { parseExpiry, parseLabels, type CliOptions } from './options.js';

/** `ls`, `show`, `rm` and `link`: read or change the repository directly, no job needed. */
export async function runCatalogCommand(
  command: 'ls' | 'show' | 'rm' | 'link',
  args: string[],
  options: CliOptions,
  config: WorkerConfig,
  logger: Logger,
): Promise<number> {
  const runtime = new JobRuntime(config, logger);
  try {
    const repository = runtime.repository(options.repo);
    const filter = { source: options.source, labels: parseLabels(options.label) };
    const out = (text: string) => process.stdout.write(text + '\n');

    if (command === 'ls') {
      const records = await repository.list(filter);
      if (options.json) out(JSON.stringify(records, null, 2));
      else if (records.length === 0) out('no snapshots');
      else {
        for (const r of records) {
          const labels = Object.entries(r.labels).map(([k, v]) => `${k}=${v}`).join(',');
          // `!`: incomplete (data left out), restic's exit code 3; see `show` for the named entries.
          out([r.incomplete ? '!' : ' ', r.id, r.source.kind, r.source.name, formatBytes(r.archive.size).padStart(10), labels].join('  '));
        }
      }
      return 0;
    }

    const ref = args[0];
    if (!ref) throw new InvalidInputError(`${command}: which snapshot? (an id, or latest with --source/--label)`);
    const record = await repository.resolve(ref, filter);
    if (command === 'show') {
      out(JSON.stringify(record, null, 2));
    } else if (command === 'rm') {
      await repository.delete(record.id);
      out(options.json ? JSON.stringify({ removed: record.id }) : `removed ${record.id}`);
    } else {
      if (!repository.driver.presign) throw new InvalidInputError(`link: repository ${repository.name} (${repository.driver.kind}) cannot make download links`);
      const url = await repository.driver.presign(record.archive.key, parseExpiry(options.expires, 3600));
      out(options.json ? JSON.stringify({ snapshotId: record.id, url }) : url);
    }
    return 0;
  } finally {
    await runtime.close();
  }
}
