import type { Repository } from '../catalog/repository.js';
import type { SnapshotRecord } from '../catalog/snapshot-record.js';
import { InvalidInputError } from '../errors.js';
import { formatOf } from '../formats/registry.js';
import type { ReadSummary, SnapshotEntry, SnapshotReader } from '../formats/snapshot-format.js';
import { payloadLayout } from '../kinds/payload-layout.js';
import type { ProgressSink } from '../progress.js';
import type { RestoreResult, RestoreSession, RestoreTarget } from '../kinds/restore-target.js';
import { checkPayload } from './payload-check.js';
import { RestorePlan, isPartial, type RestoreSelection } from './restore-selection.js';

export interface ReadSnapshotRequest {
  repository: Repository;
  record: SnapshotRecord;
  signal: AbortSignal;
  progress: ProgressSink;
  /** Seal keys by key id; a sealed snapshot is checked when its key is known. */
  sealKeys?: Record<string, Buffer>;
}

export interface RestoreRequest extends ReadSnapshotRequest {
  target: RestoreTarget;
  replace: boolean;
  /** A partial restore (sub-path, include/exclude globs): directory snapshots only. */
  selection?: RestoreSelection;
}

/**
 * Opens a snapshot through its record's format and hands `use` its entries, checked by the
 * format (sums, record) and by the kind's payload layout. The reader is closed on every path: an
 * error in `use` (a target's) stops the download and the decompression before it propagates.
 * @throws IntegrityError for a format or source kind this version does not know, and whatever
 *   the reader or `use` throws.
 */
export async function withEntries<T>(
  request: ReadSnapshotRequest,
  use: (reader: SnapshotReader, entries: AsyncIterable<SnapshotEntry>) => Promise<T>,
  plan?: RestorePlan,
): Promise<T> {
  const { record } = request;
  const format = formatOf(record);
  request.progress.setTotal(record.stats.rawBytes);
  const reader = await format.open(plan ? { ...request, select: plan.select } : request);
  try {
    const layout = payloadLayout(reader.manifest.source.kind);
    return await use(reader, checkPayload(record.id, plan ? plan.filterEntries(reader.entries) : reader.entries, layout));
  } finally {
    await reader.close();
  }
}

/**
 * Restores a snapshot into a target: pulls entries from the format's reader and writes them into
 * the target's session, which stages them; commits only after the whole snapshot verified. Any
 * failure aborts the session (leaving the target exactly as it was) after the reader stopped.
 */
export async function restoreSnapshot(request: RestoreRequest): Promise<RestoreResult> {
  const { record, target, signal, progress } = request;
  if (!target.accepts.includes(record.source.kind)) {
    throw new InvalidInputError(
      `restore: snapshot ${record.id} holds a ${record.source.kind} source; target ${target.uri} takes ${target.accepts.join(', ')}`,
    );
  }
  const partial = isPartial(request.selection);
  if (partial && record.source.kind !== 'dir') {
    throw new InvalidInputError(`restore: include, exclude and a sub-path apply to dir snapshots; snapshot ${record.id} holds a ${record.source.kind} source`);
  }
  const plan = partial ? new RestorePlan(request.selection!) : undefined;
  progress.setPhase('downloading');
  let session: RestoreSession | undefined;
  try {
    await withEntries(request, async (reader, entries) => {
      session = await target.begin(reader.manifest, { signal, progress, replace: request.replace });
      for await (const entry of entries) {
        // Small files the reader had whole skip the stream (`body` is made only when asked for).
        if (entry.bytes && session!.writeBytes) await session!.writeBytes(entry.header, entry.bytes);
        else await session!.write(entry.header, entry.body);
      }
    }, plan);
    progress.setPhase('committing');
    const committed = session!.commit();
    session = undefined; // committed or failed inside commit: never abort after commit started
    return await committed;
  } catch (err) {
    await session?.abort();
    throw err;
  }
}

/** Reads a whole snapshot and checks every byte without writing anything. */
export async function verifySnapshot(request: ReadSnapshotRequest): Promise<ReadSummary> {
  request.progress.setPhase('verifying');
  return withEntries(request, async (reader, entries) => {
    for await (const _entry of entries); // bodies left unread are drained by the reader
    return reader.summary();
  });
}
