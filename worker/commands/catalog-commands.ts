import type { Repository, SnapshotFilter } from '../../shared/catalog/repository.js';
import { openRecordNotices } from '../../shared/crypto/sealed-notices.js';
import type { SnapshotSummary } from '../../shared/catalog/snapshot-summary.js';
import type { WorkerConfig } from '../../shared/config.js';
import { IntegrityError, InvalidInputError } from '../../shared/errors.js';
import { isSnapshotId } from '../../shared/ids.js';
import { formatLabels } from '../../shared/catalog/label-text.js';
import { describeFilter, matchesFilter } from '../../shared/catalog/snapshot-filter.js';
import { formatNamed, formatOf } from '../../shared/formats/registry.js';
import { CHUNKED_FORMAT } from '../../shared/formats/chunked/chunked-format.js';
import { newChunkedStoreConfig } from '../../shared/formats/chunked/store/store-config.js';
import type { Logger } from '../../shared/logging.js';
import { groupSnapshots, parseGroupKeys } from '../../shared/retention/group-snapshots.js';
import { listGenerations } from '../../shared/kinds/sqlite/replication/list-generations.js';
import { ReplicaStore } from '../../shared/kinds/sqlite/replication/replica-store.js';
import { JobRuntime } from '../job-runner.js';
import { formatBytes } from '../progress-bar.js';
import type { CliOptions } from './flags.js';
import { formatColumns } from './columns.js';
import { EXIT_CODES } from './exit-codes.js';
import { formatGenerationTable } from './generations-table.js';
import { parseExpiry, parseLabels } from './options.js';
import { keyConfigurationHint } from '../../shared/crypto/repository-keys.js';
import { initKeySources } from './key-commands.js';

/**
 * `init`, `ls`, `show`, `rm`, `link` and `catalog rebuild`: read or change the repository
 * directly, no job needed. Only `init` creates a repository; the others fail with
 * RepositoryMissingError (exit 10) when it does not exist, rather than reporting an empty one.
 */
export async function runCatalogCommand(
  command: 'init' | 'ls' | 'show' | 'rm' | 'link' | 'catalog rebuild',
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
      const keySources = initKeySources(repository, options);
      const created = await repository.init({ ...repositorySettings(options.format, keySources.length > 0), keySources, keyLabel: options['key-label'] });
      const encrypted = created.encryption ? ` encrypted (key ${created.encryption.keyId}, ${keySources.length} key ${keySources.length === 1 ? 'object' : 'objects'})` : '';
      out(options.json ? JSON.stringify({ repository: repository.name, ...created }) : `created${encrypted} repository ${repository.name} (id ${created.id})`);
      // Keys given only on this command line are not remembered: say now what later commands need.
      if (created.encryption && repository.keySources.length === 0) {
        process.stderr.write(`snapworker: note: later commands unlock repository ${repository.name} only with a configured key source: ${keyConfigurationHint(repository.name)}\n`);
      }
      return 0;
    }
    const repository = await runtime.existingRepository(options.repo);
    const filter = { source: options.source, labels: parseLabels(options.label) };

    if (command === 'ls' && options.generations) return await listReplicaGenerations(repository, options, out);
    if (command === 'ls') {
      const keys = options['group-by'] === undefined ? undefined : parseGroupKeys(options['group-by']);
      const snapshots = await repository.index.snapshots(filter);
      if (keys === undefined) out(options.json ? JSON.stringify(snapshots, null, 2) : formatSnapshotTable(snapshots));
      else {
        // restic's `snapshots --group-by`: a group key, then its snapshots.
        const groups = [...groupSnapshots(snapshots, keys)].map(([group, members]) => ({ group, snapshots: members }));
        if (options.json) out(JSON.stringify(groups, null, 2));
        else out(groups.map(({ group, snapshots: members }) => `snapshots for ${group}:\n${formatSnapshotTable(members)}`).join('\n\n'));
      }
      return 0;
    }

    if (command === 'catalog rebuild') {
      // A damaged record is named on stderr and left out, as restic's `snapshots` does.
      const onDamaged = (_id: string, err: Error) => process.stderr.write(`snapworker: warning: ${err.message}; left out of the index\n`);
      const result = await repository.index.rebuild({ onDamaged });
      const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
      out(
        options.json
          ? JSON.stringify({ repository: repository.name, ...result })
          : `rebuilt the catalog index of ${repository.name}: ${plural(result.snapshots, 'snapshot')} in ${plural(result.lineages, 'lineage')}, ${plural(result.replaced, 'index object')} replaced${result.damaged.length ? `, ${plural(result.damaged.length, 'damaged record')} left out` : ''}`,
      );
      // Completed, but not everything is in the index: a script must not read this as all well.
      return result.damaged.length ? EXIT_CODES.incomplete.code : EXIT_CODES.ok.code;
    }

    if (command === 'rm' && (options.all || args.length === 0)) return await removeAll(repository, filter, args, options, out);

    if (command === 'rm') return await removeOne(repository, args[0]!, filter, options, out);
    const record = await repository.resolve(args[0]!, filter);
    if (command === 'show') {
      out(JSON.stringify(await openRecordNotices(repository, record, { ifUnlockable: true }), null, 2));
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
 * `ls --source NAME --generations`: the generations of the SQLite replica NAME (what
 * `replicate` writes), oldest first, as a table or with `--json` as `GenerationSummary[]`.
 * @throws InvalidInputError without --source, or with --label/--group-by (replicas have neither).
 */
async function listReplicaGenerations(repository: Repository, options: CliOptions, out: (text: string) => void): Promise<number> {
  if (options.source === undefined) throw new InvalidInputError('ls: --generations needs --source NAME, the replica name (as "replicate ls" shows it)');
  if (options.label.length > 0 || options['group-by'] !== undefined) throw new InvalidInputError('ls: --generations lists one replica; --label and --group-by do not apply');
  const generations = await listGenerations(new ReplicaStore(repository.replicaStorage(), options.source));
  out(options.json ? JSON.stringify(generations, null, 2) : formatGenerationTable(options.source, generations));
  return 0;
}

/**
 * What `init --format F` writes into `config.json`: the format, and for the chunked format its
 * store settings (chunker sizes, and a fresh id key unless the repository is encrypted).
 * @throws InvalidInputError for a format this version does not know.
 */
function repositorySettings(format: string | undefined, encrypted: boolean): { snapshotFormat?: string; chunked?: Record<string, unknown> } {
  if (format === undefined) return {};
  const name = formatNamed(format).name;
  // An encrypted repository's id key is in its key material, never in config.json.
  return name === CHUNKED_FORMAT ? { snapshotFormat: name, chunked: { ...newChunkedStoreConfig({ plain: !encrypted }) } } : { snapshotFormat: name };
}

/**
 * `rm <snapshot>`: one snapshot, through its format. With --source or --label the snapshot must
 * match them (a filter beside an id is a check, never ignored). A snapshot whose record is
 * damaged (not JSON, not a record) is still removed by its full id: nothing else could remove it,
 * since prune and `rm --all` read the catalog, which leaves damaged records out.
 */
async function removeOne(repository: Repository, ref: string, filter: SnapshotFilter, options: CliOptions, out: (line: string) => void): Promise<number> {
  const dryRun = options['dry-run'];
  const report = (id: string, note = '') =>
    out(options.json ? JSON.stringify({ dryRun, removed: [id] }) : `${dryRun ? 'would remove' : 'removed'} ${id}${note}`);
  let record;
  try {
    // The filter is checked below, with rm's own message.
    record = await repository.resolve(ref, ref === 'latest' ? filter : {});
  } catch (err) {
    if (!(err instanceof IntegrityError) || !isSnapshotId(ref)) throw err;
    if (!dryRun) await repository.delete(ref);
    report(ref, ' (its record was damaged)');
    return 0;
  }
  if (ref !== 'latest' && !matchesFilter(record, filter)) {
    throw new InvalidInputError(`rm: snapshot ${record.id} does not match ${describeFilter(filter)}; nothing removed`);
  }
  if (!dryRun) await formatOf(record).delete(repository, record);
  report(record.id);
  return 0;
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
  const records = await repository.index.snapshots(filter);
  const dryRun = options['dry-run'];
  if (!dryRun) await repository.deleteSnapshots(records);
  if (options.json) out(JSON.stringify({ dryRun, removed: records.map((r) => r.id) }));
  else {
    for (const record of records) out(`${dryRun ? 'would remove' : 'removed'} ${record.id}`);
    out(`${dryRun ? 'would remove' : 'removed'} ${records.length} snapshot${records.length === 1 ? '' : 's'}`);
  }
  return 0;
}

/**
 * `ls` for people: a header, then one line per snapshot: the short id (the hex part of the id,
 * usable wherever an id is), when it was taken (its start, UTC), the source, labels, its size
 * (the logical bytes of its files, as restic's and kopia's listings show) and the bytes it added
 * to the repository (an archive: the whole archive; a chunked snapshot: only its new packs' blobs,
 * so an unchanged snapshot adds 0 B); a count last. An id ending in `!` marks an incomplete
 * snapshot (data left out, restic's exit code 3; `show` names the entries).
 */
export function formatSnapshotTable(records: readonly SnapshotSummary[]): string {
  const rows = records.map((r) => [
    r.id.slice(r.id.indexOf('-') + 1) + (r.incomplete ? '!' : ''),
    r.createdAt.slice(0, 19).replace('T', ' '),
    `${r.source.kind}:${r.source.name}`,
    formatLabels(r.labels) || '-',
    formatBytes(r.stats.rawBytes),
    formatBytes(r.stats.storedBytes),
  ]);
  const header = ['ID', 'TIME (UTC)', 'SOURCE', 'LABELS', 'SIZE', 'ADDED'];
  return [...formatColumns(header, rows, new Set([4, 5])), `${records.length} snapshot${records.length === 1 ? '' : 's'}`].join('\n');
}
