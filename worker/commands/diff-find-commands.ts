import { once } from 'node:events';
import type { Repository, SnapshotFilter } from '../../shared/catalog/repository.js';
import type { SnapshotRecord } from '../../shared/catalog/snapshot-record.js';
import type { WorkerConfig } from '../../shared/config.js';
import { errorMessage, IntegrityError } from '../../shared/errors.js';
import { showName } from '../../shared/fsutil/byte-name.js';
import { listEntries } from '../../shared/formats/list-entries.js';
import type { ListedEntry } from '../../shared/formats/snapshot-format.js';
import type { Logger } from '../../shared/logging.js';
import { DiffTally, diffListings, modifierOf, type ChangeCounts, type EntryChange } from '../../shared/browse/diff-listings.js';
import { inPayloadOrder } from '../../shared/browse/entry-order.js';
import { pathGlob } from '../../shared/browse/path-glob.js';
import { entryMtimeNs } from '../../shared/snapshot/entry.js';
import { JobRuntime } from '../job-runner.js';
import { formatBytes } from '../progress-bar.js';
import { untilInterrupted } from './interrupt.js';
import { EXIT_CODES, InterruptedError } from './exit-codes.js';
import type { CliOptions } from './flags.js';
import { parseLabels } from './options.js';

/**
 * `diff` and `find`: read snapshots in this process (they change nothing, so they are no jobs),
 * through each snapshot's format listing (`listEntries`), and stream what they find to stdout:
 * memory does not grow with the snapshots' size. Ctrl-C stops the reads (exit 130).
 */
export async function runBrowseCommand(command: 'diff' | 'find', args: string[], options: CliOptions, config: WorkerConfig, logger: Logger): Promise<number> {
  const runtime = new JobRuntime(config, logger);
  const controller = new AbortController();
  try {
    const repository = await runtime.existingRepository(options.repo);
    const filter: SnapshotFilter = { source: options.source, labels: parseLabels(options.label) };
    const context: BrowseContext = { repository, filter, json: options.json, signal: controller.signal, sealKeys: runtime.sealKeys(), write: writeStdout };
    const work = command === 'diff' ? runDiff(context, args[0]!, args[1]!) : runFind(context, args[0]!);
    return await untilInterrupted(work, () => {
      const interrupted = new InterruptedError(`${command} interrupted`);
      controller.abort(interrupted);
      return interrupted;
    }, { waitForWork: true });
  } finally {
    await runtime.close();
  }
}

/** What `diff` and `find` read from and write to. */
export interface BrowseContext {
  repository: Repository;
  /** Picks `latest` (diff), or the snapshots searched (find); checked beside an id. */
  filter: SnapshotFilter;
  json: boolean;
  signal: AbortSignal;
  sealKeys: Record<string, Buffer>;
  /** Where the output goes, resolving when it may take more (stdout's backpressure). */
  write: (text: string) => Promise<void>;
}

/** restic's `diff`: one line per change (`+`, `-`, `M`, `T`, `U`), then counts and bytes. Resolves with the exit code. */
export async function runDiff({ repository, filter, json, signal, sealKeys, write }: BrowseContext, refA: string, refB: string): Promise<number> {
  const a = await repository.resolve(refA, filter, { signal });
  const b = await repository.resolve(refB, filter, { signal });
  const listing = (record: SnapshotRecord) => inPayloadOrder(record, listEntries(repository, record, { signal, sealKeys }));
  const tally = new DiffTally();
  // The first change (or the end) is awaited before any output: a snapshot that cannot be read
  // (a missing key, a damaged index) is refused in one line, not after a header.
  const changes = diffListings(listing(a), listing(b))[Symbol.asyncIterator]();
  const head = await changes.next();
  if (json) await write(`{"a":${JSON.stringify(a.id)},"b":${JSON.stringify(b.id)},"changes":[`);
  else await write(`comparing snapshot ${a.id} to ${b.id}:\n`);
  let first = true;
  for await (const change of prepended(head, changes)) {
    tally.add(change);
    if (json) {
      await write(`${first ? '\n' : ',\n'}${JSON.stringify(changeJson(change))}`);
      first = false;
    } else await write(`${modifierOf(change).padEnd(5)}${showName(change.path)}${changeDetail(change)}\n`);
  }
  const { summary } = tally;
  if (json) {
    await write(`\n],"summary":${JSON.stringify(summary)}}\n`);
    return EXIT_CODES.ok.code;
  }
  const line = (what: string, counts: ChangeCounts) => `${what.padEnd(13)}${counts.added} new, ${counts.removed} removed, ${counts.changed} changed\n`;
  await write(
    `\n${line('Files:', summary.files)}${line('Directories:', summary.directories)}${line('Others:', summary.others)}` +
      `Added:       ${formatBytes(summary.addedBytes)}\nRemoved:     ${formatBytes(summary.removedBytes)}\n`,
  );
  return EXIT_CODES.ok.code;
}

/** `    (content, size 10 B → 2 KiB, mode 0644 → 0600)`: what changed, for people. */
function changeDetail(change: EntryChange): string {
  if (change.change !== 'changed') return '';
  const { before, after } = change;
  const parts = change.fields.map((field) => {
    switch (field) {
      case 'type':
        return `${before.type} → ${after.type}`;
      case 'size':
        return `size ${formatBytes(before.size)} → ${formatBytes(after.size)}`;
      case 'mode':
        return `mode ${octal(before.mode)} → ${octal(after.mode)}`;
      case 'linkTarget':
        return `target ${showName(before.linkTarget ?? '')} → ${showName(after.linkTarget ?? '')}`;
      default:
        return field;
    }
  });
  return `    (${parts.join(', ')})`;
}

/**
 * restic's `find`: per snapshot holding a match, its id, source and time, then each matching path.
 * Resolves with the exit code: 1 when a snapshot could not be read (named on stderr; the others are still searched).
 */
export async function runFind({ repository, filter, json, signal, sealKeys, write }: BrowseContext, pattern: string): Promise<number> {
  const matches = pathGlob(pattern);
  const snapshots = await repository.index.snapshots(filter, { signal });
  let damaged = 0;
  let found = 0;
  let firstSnapshot = true;
  if (json) await write('[');
  for (const summary of snapshots) {
    let record: SnapshotRecord;
    let shown = false;
    try {
      record = await repository.getRecord(summary.id, { signal });
      for await (const entry of listEntries(repository, record, { signal, sealKeys, select: matches, hash: false })) {
        if (!matches(entry.path)) continue;
        if (!shown) {
          await write(
            json
              ? `${firstSnapshot ? '\n' : ',\n'}{"snapshot":${JSON.stringify({ id: record.id, source: record.source, labels: record.labels, createdAt: record.createdAt })},"matches":[`
              : `snapshot ${record.id} of ${record.source.kind}:${record.source.name} at ${record.createdAt}:\n`,
          );
          firstSnapshot = false;
        }
        await write(json ? `${shown ? ',' : ''}\n${JSON.stringify(entryJson(entry))}` : `  ${entryLine(entry)}\n`);
        shown = true;
        found++;
      }
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      // One damaged snapshot must not hide the matches in the others (restic's find goes on too).
      process.stderr.write(`snapworker: error: ${errorMessage(err)}\n`);
      damaged++;
    }
    if (shown && json) await write(']}');
  }
  if (json) await write('\n]\n');
  else await write(`${found} match${found === 1 ? '' : 'es'} in ${snapshots.length} snapshot${snapshots.length === 1 ? '' : 's'} searched\n`);
  return damaged > 0 ? EXIT_CODES.failed.code : EXIT_CODES.ok.code;
}

/** `-rw-r--r--  1.2 KiB  2026-11-29 10:00:00  data/etc/app.conf -> target`, as `ls -l` would show it. */
function entryLine(entry: ListedEntry): string {
  const link = entry.linkTarget !== undefined ? ` -> ${showName(entry.linkTarget)}` : '';
  return `${typeLetter(entry)}${octal(entry.mode)}  ${formatBytes(entry.size).padStart(10)}  ${entry.mtime.toISOString().slice(0, 19).replace('T', ' ')}  ${showName(entry.path)}${link}`;
}

function typeLetter(entry: ListedEntry): string {
  return { file: '-', directory: 'd', symlink: 'l', hardlink: 'h', fifo: 'p', chardev: 'c', blockdev: 'b' }[entry.type];
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}

/** A listed entry as JSON: times as ISO and exact nanoseconds (a string), xattrs by name. */
export function entryJson(entry: ListedEntry): Record<string, unknown> {
  return {
    path: entry.path,
    type: entry.type,
    mode: octal(entry.mode),
    size: entry.size,
    mtime: entry.mtime.toISOString(),
    mtimeNs: entryMtimeNs(entry).toString(),
    ...(entry.linkTarget !== undefined ? { linkTarget: entry.linkTarget } : {}),
    ...(entry.sha256 !== undefined ? { sha256: entry.sha256 } : {}),
    ...(entry.xattrs?.length ? { xattrs: entry.xattrs.map((x) => x.name) } : {}),
    ...(entry.devMajor !== undefined ? { devMajor: entry.devMajor, devMinor: entry.devMinor } : {}),
  };
}

function changeJson(change: EntryChange): Record<string, unknown> {
  return {
    modifier: modifierOf(change),
    change: change.change,
    path: change.path,
    ...(change.change === 'changed' ? { fields: change.fields } : {}),
    ...(change.change !== 'added' ? { before: entryJson(change.before) } : {}),
    ...(change.change !== 'removed' ? { after: entryJson(change.after) } : {}),
  };
}

/** Writes to stdout, waiting when it is full: a diff of millions of entries must not pile up in memory. */
async function writeStdout(text: string): Promise<void> {
  if (!process.stdout.write(text)) await once(process.stdout, 'drain');
}

/** The changes of an iterator whose first result was already taken (`head`). */
async function* prepended<T>(head: IteratorResult<T>, rest: AsyncIterator<T>): AsyncGenerator<T> {
  if (head.done) return;
  try {
    yield head.value;
    for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
  } finally {
    await rest.return?.(); // a consumer that stops early closes the listings too
  }
}
