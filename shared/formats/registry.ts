import type { SnapshotRecord } from '../catalog/snapshot-record.js';
import { IntegrityError, InvalidInputError } from '../errors.js';
import { archiveFormat } from './archive/archive-format.js';
import { chunkedFormat } from './chunked/chunked-format.js';
import type { SnapshotFormat } from './snapshot-format.js';

/**
 * Every snapshot format this version reads and writes, one line each (restic's
 * `internal/backend/all`). A Map: the name comes from stored records and config, and no input may
 * find a property of Object.
 */
const FORMATS = new Map<string, SnapshotFormat>([
  [archiveFormat.name, archiveFormat],
  [chunkedFormat.name, chunkedFormat],
]);

/** The format of snapshots whose record names none: every record written before formats had names. */
export const DEFAULT_FORMAT = archiveFormat.name;

/** Names of the known formats, for messages and docs. */
export function formatNames(): string[] {
  return [...FORMATS.keys()];
}

/**
 * The format called `name` (the default when undefined), for writing new snapshots.
 * @throws InvalidInputError for a name this version does not know (a repository config or option
 *   naming a format of a newer version).
 */
export function formatNamed(name: string | undefined): SnapshotFormat {
  const format = FORMATS.get(name ?? DEFAULT_FORMAT);
  if (!format) throw new InvalidInputError(`snapshot format ${JSON.stringify(name)} is not known to this version (known: ${formatNames().join(', ')})`);
  return format;
}

/**
 * The format a stored snapshot was written in; records without `format` are archives.
 * @throws IntegrityError for a format this version does not know (written by a newer version, or
 *   tampered with): one line naming the snapshot and the format, never retried.
 */
export function formatOf(record: Pick<SnapshotRecord, 'id' | 'format'>): SnapshotFormat {
  const format = FORMATS.get(record.format ?? DEFAULT_FORMAT);
  if (!format) {
    throw new IntegrityError(`snapshot ${record.id}: stored in format ${JSON.stringify(record.format)}, which this version cannot read (known: ${formatNames().join(', ')})`);
  }
  return format;
}

/** Every known format, for repository-wide maintenance (prune's garbage collection). */
export function allFormats(): SnapshotFormat[] {
  return [...FORMATS.values()];
}
