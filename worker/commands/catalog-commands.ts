import type { Repository, SnapshotFilter } from '../../shared/catalog/repository.js';
import type { SnapshotRecord } from '../../shared/catalog/snapshot-record.js';
import type { WorkerConfig } from '../../shared/config.js';
import { InvalidInputError } from '../../shared/errors.js';
import { formatOf } from '../../shared/formats/registry.js';
import type { Logger } from '../../shared/logging.js';
import { JobRuntime } from '../job-runner.js';
import { formatBytes } from '../progress-bar.js';
import type { CliOptions } from './flags.js';
import { parseExpiry, parseLabels } from './options.js';

/**
 * `init`, `ls`, `show`, `rm` and `link`: read or change the repository directly, no job needed.
 * Only `init` creates a repository; the others fail with RepositoryMissingError (exit 10) when it
 * does not exist, rather than reporting an empty one.
 */
export async function runCatalogCommand(
  command: 'init' | 'ls' | 'show' | 'rm' | 'link',
  args: string[],
  options: CliOptions,
  config: WorkerConfig,
  logger: Logger,
): Promise<number> {
  const runtime = new JobRuntime(config, logger);
  const out = (text: string) => process.stdout.write(text + '\n');
  try {
    if (command === 'init') {
      const repository = runtime.repository(options.repo);
      const created = await repository.init();
      out(options.json ? JSON.stringify({ repository: repository.name, ...created }) : `created repository ${repository.name} (id ${created.id})`);
      return 0;
    }
    const repository = await runtime.existingRepository(options.repo);
    const filter = { source: options.source, labels: parseLabels(options.label) };

    if (command === 'ls') {
      // A damaged record is named on stderr and the rest listed, as restic's `snapshots` does.
      const onDamaged = (_id: string, err: Error) => process.stderr.write(`snapworker: warning: ${err.message}; left out of the list\n`);
      const records = await repository.list(filter, { onDamaged });
      if (options.json) out(JSON.stringify(records, null, 2));
      else out(formatSnapshotTable(records));
      return 0;
    }

    if (command === 'rm' && (options.all || args.length === 0)) return await removeAll(repository, filter, args, options, out);

    const record = await repository.resolve(args[0]!, filter);
    if (command === 'show') {
      out(JSON.stringify(record, null, 2));
    } else if (command === 'rm') {
      if (!options['dry-run']) await formatOf(record).delete(repository, record);
      const verb = options['dry-run'] ? 'would remove' : 'removed';
      out(options.json ? JSON.stringify({ dryRun: options['dry-run'], removed: [record.id] }) : `${verb} ${record.id}`);
    } else {
      const key = formatOf(record).downloadKey?.(record);
      if (key === undefined) throw new InvalidInputError(`link: snapshot ${record.id} is stored in format ${record.format}, which has no single object to link to`);
      const url = await repository.presign(key, parseExpiry(options.expires, 3600)).catch((err: unknown) => {
        if (err instanceof InvalidInputError) err.message = `link: ${err.message}`;
        throw err;
      });
      out(options.json ? JSON.stringify({ snapshotId: record.id, url }) : url);
    }
    return 0;
  } finally {
    await runtime.close();
  }
}

/**
 * `rm --all --label app=shop [--dry-run]`: every snapshot matching the filter, oldest first (the
 * hosting panel's "delete every snapshot of an app"). A filter is required, so `rm --all` alone
 * can never empty a repository.
 * @throws InvalidInputError without --all, with a snapshot argument too, or without a filter.
 */
async function removeAll(
  repository: Repository,
  filter: SnapshotFilter,
  args: string[],
  options: CliOptions,
  out: (text: string) => void,
): Promise<number> {
  if (!options.all) throw new InvalidInputError('rm: give a <snapshot>, or --all with --source and/or --label');
  if (args.length > 0) throw new InvalidInputError(`rm: --all removes every snapshot matching the filter; drop "${args[0]}" or --all`);
  if (filter.source === undefined && filter.labels === undefined) throw new InvalidInputError('rm --all: needs --source or --label, so that it never empties the whole repository');
  const records = await repository.list(filter);
  const dryRun = options['dry-run'];
  for (const record of records) if (!dryRun) await formatOf(record).delete(repository, record);
  if (options.json) out(JSON.stringify({ dryRun, removed: records.map((r) => r.id) }));
  else {
    for (const record of records) out(`${dryRun ? 'would remove' : 'removed'} ${record.id}`);
    out(`${dryRun ? 'would remove' : 'removed'} ${records.length} snapshot${records.length === 1 ? '' : 's'}`);
  }
  return 0;
}

/**
 * `ls` for people: a header, then one line per snapshot: the short id (the hex part of the id,
 * usable wherever an id is), when it was taken (its start, UTC), the source, labels and the
 * stored size; a count last. An id ending in `!` marks an incomplete snapshot (data left out,
 * restic's exit code 3; `show` names the entries).
 */
export function formatSnapshotTable(records: readonly SnapshotRecord[]): string {
  const rows = records.map((r) => [
    r.id.slice(r.id.indexOf('-') + 1) + (r.incomplete ? '!' : ''),
    r.createdAt.slice(0, 19).replace('T', ' '),
    `${r.source.kind}:${r.source.name}`,
    Object.entries(r.labels).map(([k, v]) => `${k}=${v}`).join(',') || '-',
    formatBytes(r.stats.storedBytes),
  ]);
  const header = ['ID', 'TIME (UTC)', 'SOURCE', 'LABELS', 'SIZE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line), `${records.length} snapshot${records.length === 1 ? '' : 's'}`].join('\n');
}
