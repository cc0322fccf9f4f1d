import type { Writable } from 'node:stream';
import type { Repository } from '../../shared/catalog/repository.js';
import type { SnapshotRecord } from '../../shared/catalog/snapshot-record.js';
import { InvalidInputError } from '../../shared/errors.js';
import { formatOf } from '../../shared/formats/registry.js';
import type { ListedEntry, OpenSnapshotRequest } from '../../shared/formats/snapshot-format.js';
import { END_OF_ARCHIVE, encodeTarHeader, paddingFor } from '../../shared/formats/archive/tar-encoder.js';
import { waitForDrain } from '../../shared/formats/archive/stream-wait.js';
import { nullProgress } from '../../shared/progress.js';
import type { EntryHeader } from '../../shared/snapshot/entry.js';
import { entryMtimeNs } from '../../shared/snapshot/entry.js';
import type { CliOptions } from './flags.js';
import { parseLabels } from './options.js';

/*
 * `files` and `dump` (docs/browsing.md): read a snapshot directly, no job. Paths of directory
 * snapshots are shown and given as `/sub/file` (the payload's `data/sub/file`); other kinds'
 * payload names as they are stored (`backup.json`).
 */

/** The payload path a user's path names in this snapshot. @throws InvalidInputError for `..` */
export function payloadPath(record: SnapshotRecord, userPath: string): string {
  const parts = userPath.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new InvalidInputError(`path ${JSON.stringify(userPath)}: ".." is not allowed`);
  return record.source.kind === 'dir' ? ['data', ...parts].join('/') : parts.join('/');
}

/** How a payload path is shown. */
export function shownPath(record: SnapshotRecord, path: string): string {
  if (record.source.kind !== 'dir') return path;
  return path === 'data' ? '/' : path.slice('data'.length);
}

/** A select for everything at and below `base` (everything when `base` is ''). */
function under(base: string): (path: string) => boolean {
  return (path) => base === '' || path === base || path.startsWith(`${base}/`);
}

/**
 * The entries of a snapshot at and below `base`: from the format's listing when it has one, else
 * read through `open` (the whole snapshot is then read and checked).
 */
async function* listed(repository: Repository, record: SnapshotRecord, base: string, signal: AbortSignal): AsyncGenerator<ListedEntry> {
  const request: OpenSnapshotRequest = { repository, record, signal, progress: nullProgress, select: under(base) };
  const format = formatOf(record);
  const listing = await format.listEntries?.(request);
  if (listing) return yield* listing;
  const reader = await format.open(request);
  try {
    for await (const { header } of reader.entries) yield header;
  } finally {
    await reader.close();
  }
}

const TYPE_LETTERS: Record<EntryHeader['type'], string> = { file: '-', directory: 'd', symlink: 'l', hardlink: 'h', fifo: 'p', chardev: 'c', blockdev: 'b' };

/** `ls -l`-like: type and mode, size, mtime (UTC, to the second), path, and `-> target` for links. */
function longLine(record: SnapshotRecord, entry: ListedEntry): string {
  let mode = TYPE_LETTERS[entry.type];
  for (let shift = 6; shift >= 0; shift -= 3) {
    const bits = (entry.mode >> shift) & 7;
    mode += `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${bits & 1 ? 'x' : '-'}`;
  }
  const time = new Date(Number(entryMtimeNs(entry) / 1_000_000n)).toISOString().replace('T', ' ').slice(0, 19);
  const link = entry.linkTarget === undefined ? '' : ` -> ${entry.type === 'hardlink' ? shownPath(record, entry.linkTarget) : entry.linkTarget}`;
  return `${mode} ${String(entry.size).padStart(12)} ${time} ${shownPath(record, entry.path)}${link}`;
}

function jsonEntry(record: SnapshotRecord, entry: ListedEntry): Record<string, unknown> {
  return {
    path: shownPath(record, entry.path),
    type: entry.type,
    mode: entry.mode,
    size: entry.size,
    mtime: entry.mtime.toISOString(),
    mtimeNs: entryMtimeNs(entry).toString(),
    ...(entry.linkTarget !== undefined ? { linkTarget: entry.type === 'hardlink' ? shownPath(record, entry.linkTarget) : entry.linkTarget } : {}),
    ...(entry.sparse ? { sparse: entry.sparse } : {}),
    ...(entry.xattrs ? { xattrs: entry.xattrs.map((x) => x.name) } : {}),
    ...(entry.sha256 ? { sha256: entry.sha256 } : {}),
  };
}

/**
 * `files <snapshot> [path]`: prints the entries at and below path. @returns the exit code
 * @throws InvalidInputError when the path is not in the snapshot
 */
export async function runFilesCommand(repository: Repository, args: string[], options: CliOptions, out: Writable, signal: AbortSignal): Promise<number> {
  if (options.long && options.json) throw new InvalidInputError('files: --long and --json exclude each other (--json has every field --long shows)');
  const record = await repository.resolve(args[0]!, { source: options.source, labels: parseLabels(options.label) }, { signal });
  const base = args[1] === undefined ? '' : payloadPath(record, args[1]);
  const write = async (text: string) => {
    if (!out.write(text)) await waitForDrain(out, 'stdout');
  };
  let count = 0;
  for await (const entry of listed(repository, record, base, signal)) {
    if (options.json) await write(`${count === 0 ? '[\n' : ',\n'}${JSON.stringify(jsonEntry(record, entry))}`);
    else await write(`${options.long ? longLine(record, entry) : shownPath(record, entry.path)}\n`);
    count += 1;
  }
  if (count === 0 && base !== '') throw new InvalidInputError(`files: snapshot ${record.id} has no ${JSON.stringify(args[1])}`);
  if (options.json) await write(count === 0 ? '[]\n' : '\n]\n');
  return 0;
}

/**
 * `dump <snapshot> <path>`: a file's bytes, or a tar of a directory (paths relative to it,
 * sparse files written out whole), to `out`. Only the entries at and below path are read.
 * @throws InvalidInputError when the path is not in the snapshot; IntegrityError from the reader.
 */
export async function runDumpCommand(repository: Repository, args: string[], options: CliOptions, out: Writable, signal: AbortSignal): Promise<number> {
  const record = await repository.resolve(args[0]!, { source: options.source, labels: parseLabels(options.label) }, { signal });
  const base = payloadPath(record, args[1]!);
  const reader = await formatOf(record).open({ repository, record, signal, progress: nullProgress, select: under(base) });
  const write = async (bytes: Buffer) => {
    if (!out.write(bytes)) await waitForDrain(out, 'stdout');
  };
  // A directory snapshot's root may have no entry of its own (dir sources write none).
  let found: EntryHeader['type'] | undefined = base === 'data' && record.source.kind === 'dir' ? 'directory' : undefined;
  try {
    for await (const { header, body } of reader.entries) {
      if (header.path === base) found = header.type;
      if (found === 'file') {
        // The file as it reads: a sparse file's holes as zeros, not only its data segments.
        await writeWhole(header, body! as AsyncIterable<Buffer>, write);
        continue;
      }
      if (found !== 'directory') throw new InvalidInputError(`dump: ${JSON.stringify(args[1])} is a ${header.type}; dump takes a file or a directory`);
      if (header.path === base) continue;
      const name = header.path.slice(base.length + 1);
      if (header.type === 'hardlink' && !header.linkTarget!.startsWith(`${base}/`)) {
        // Its content is under its first name, outside this tar: refused, never an empty link.
        throw new InvalidInputError(`dump: ${shownPath(record, header.path)} is a hard link to ${shownPath(record, header.linkTarget!)}, outside ${JSON.stringify(args[1])}; dump a directory that holds both`);
      }
      const linkname = header.type === 'hardlink' ? header.linkTarget!.slice(base.length + 1) : header.linkTarget;
      await write(encodeTarHeader({ name, type: header.type, mode: header.mode, mtimeNs: entryMtimeNs(header), size: header.size, linkname, devMajor: header.devMajor, devMinor: header.devMinor }));
      if (header.type !== 'file') continue;
      await writeWhole(header, body! as AsyncIterable<Buffer>, write);
      await write(Buffer.alloc(paddingFor(header.size)));
    }
    if (found === undefined) throw new InvalidInputError(`dump: snapshot ${record.id} has no ${JSON.stringify(args[1])}`);
    if (found === 'directory') await write(END_OF_ARCHIVE);
  } finally {
    await reader.close();
  }
  return 0;
}

/** A file's logical bytes: for a sparse file, its data segments with zeros in the holes. */
async function writeWhole(header: EntryHeader, body: AsyncIterable<Buffer>, write: (bytes: Buffer) => Promise<void>): Promise<void> {
  if (!header.sparse) {
    for await (const chunk of body) await write(chunk);
    return;
  }
  const zeros = Buffer.alloc(64 * 1024);
  const hole = async (bytes: number) => {
    for (let left = bytes; left > 0; left -= zeros.length) await write(zeros.subarray(0, Math.min(left, zeros.length)));
  };
  let at = 0;
  const chunks = body[Symbol.asyncIterator]();
  let pending: Buffer = Buffer.alloc(0);
  for (const segment of header.sparse) {
    await hole(segment.offset - at);
    let left = segment.length;
    while (left > 0) {
      if (pending.length === 0) {
        const next = await chunks.next();
        if (next.done) throw new InvalidInputError(`dump: sparse file ${header.path} ended early`);
        pending = next.value;
      }
      const piece = pending.subarray(0, left);
      pending = pending.subarray(piece.length);
      left -= piece.length;
      await write(piece);
    }
    at = segment.offset + segment.length;
  }
  await hole(header.size - at);
  for (let next = await chunks.next(); !next.done; next = await chunks.next());
}
