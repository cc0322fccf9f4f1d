import { pipeline } from 'node:stream';
import { openRecordNotices, sealRecordNotices } from '../crypto/sealed-notices.js';
import { archiveOf } from '../formats/archive/archive-of.js';
import type { CopiedSnapshotResult, CopyJobResult } from '../../jobs/results.js';
import type { Repository } from '../catalog/repository.js';
import type { SnapshotRecord } from '../catalog/snapshot-record.js';
import { DigestStream } from '../digest-stream.js';
import { IntegrityError } from '../errors.js';
import type { SealKey } from '../formats/archive/seal.js';
import { formatNamed, formatOf } from '../formats/registry.js';
import type { SnapshotEntry, SnapshotFormat } from '../formats/snapshot-format.js';
import type { ProgressSink } from '../progress.js';
import type { SourceEntry } from '../snapshot/entry.js';
import type { SnapshotManifest } from '../snapshot/manifest.js';
import { verifySnapshot } from './restore-snapshot.js';

/** How a snapshot travels: its stored objects byte for byte, or its entries re-written by the target's format. */
export type CopyRoute = 'objects' | 'entries';

export interface CopySnapshotsRequest {
  from: Repository;
  to: Repository;
  /** Complete snapshots of `from`, in the order to copy them. */
  records: readonly SnapshotRecord[];
  signal: AbortSignal;
  progress: ProgressSink;
  /** Seal keys by key id: a sealed snapshot is read (and its copy verified) with its key. */
  sealKeys?: Record<string, Buffer>;
  /** Entries route: seals the re-written snapshot with this key (the worker's), when the original was sealed. */
  seal?: SealKey;
  /** Entries route: compression level and zstd threads for the target's writer. */
  level?: number;
  threads?: number;
  /** Default `auto`: objects when both repositories use the snapshot's format and it shares no objects, else entries. */
  route?: 'auto' | CopyRoute;
}

/** What a copy did (the job contract's types: results are published as they are). */
export type CopiedSnapshot = CopiedSnapshotResult;
export type CopySnapshotsResult = Omit<CopyJobResult, 'from' | 'to'>;

/**
 * Copies snapshots from one repository to another (restic's `copy`), keeping each snapshot's id
 * and record fields (source, labels, times, notices), so a copy lists, resolves and prunes like
 * the original. A snapshot the target already holds is skipped. For each snapshot:
 *
 * - objects route (both repositories use its format, the format keeps each snapshot's
 *   objects in its own folder, and both are unencrypted or encrypted under the same key): each object the record needs is streamed across, its size and
 *   SHA-256 checked against the record on the way;
 * - entries route (different formats or keys, or a format with shared objects such as packs): the
 *   snapshot is read through its format and its entries written by the target's format.
 *
 * Either way the copy is then read back whole from the target and verified (sums, seal, record)
 * before its record is written, last: a damaged source (a flipped byte) or a failed transfer
 * commits nothing, and what was stored is removed. Snapshots are copied one at a time; memory
 * stays that of one read and one write.
 * @throws IntegrityError for a source snapshot that fails its checks (nothing of it committed);
 *   snapshots copied before it stay copied.
 */
export async function copySnapshots(request: CopySnapshotsRequest): Promise<CopySnapshotsResult> {
  const result: CopySnapshotsResult = { copied: [], skipped: [] };
  const targetFormat = formatNamed(await request.to.snapshotFormat({ signal: request.signal }));
  for (const record of request.records) {
    if (await request.to.hasRecord(record.id, { signal: request.signal })) {
      result.skipped.push(record.id);
      continue;
    }
    result.copied.push(await copyOne(request, record, targetFormat));
  }
  return result;
}

async function copyOne(request: CopySnapshotsRequest, record: SnapshotRecord, targetFormat: SnapshotFormat): Promise<CopiedSnapshot> {
  const { to, signal, progress } = request;
  const sourceFormat = formatOf(record);
  const sameFormat = sourceFormat.name === targetFormat.name && sourceFormat.collectGarbage === undefined;
  // Stored objects are readable in the target only under the key they were encrypted with (or none).
  const sameKey = record.keyId === (await to.encryption({ signal }))?.keyId;
  const route: CopyRoute = request.route === 'entries' || !sameFormat || !sameKey ? 'entries' : 'objects';
  let copy: SnapshotRecord;
  try {
    copy = route === 'objects' ? await copyObjects(request, record, sourceFormat) : await copyEntries(request, record, targetFormat);
    // Verify on arrival: the copy as the target stores it, read back whole.
    await verifySnapshot({ repository: to, record: copy, signal, progress, sealKeys: request.sealKeys });
    progress.setPhase('committing');
    // Named notices are sealed under each repository's own key (or stored plain in a plain one).
    const stored = copy.keyId === record.keyId ? copy : await sealRecordNotices(to, await openRecordNotices(request.from, copy, { signal }), signal);
    await to.putRecord(stored, { signal });
  } catch (err) {
    // Nothing of a failed copy stays: its record was never written, so this removes only its objects.
    if (!(await to.hasRecord(record.id).catch(() => true))) await to.delete(record.id).catch(() => {});
    throw err;
  }
  return { id: record.id, route, format: copy.format ?? sourceFormat.name, storedBytes: copy.stats.storedBytes };
}

/** Streams each object the record needs to the same place in the target, checking the record's size and SHA-256. */
async function copyObjects(request: CopySnapshotsRequest, record: SnapshotRecord, format: SnapshotFormat): Promise<SnapshotRecord> {
  const { from, to, signal, progress } = request;
  progress.setPhase('uploading');
  const archive = archiveOf(record);
  progress.setTotal(archive.size);
  const folder = `snapshots/${record.id}/`;
  for (const key of format.requiredKeys(record)) {
    const name = key.slice(folder.length);
    // The record is untrusted input: it may only name objects inside its own folder.
    if (!key.startsWith(folder) || name.includes('/')) throw new IntegrityError(`snapshot ${record.id}: its record names ${key}, outside its folder`);
    const digest = new DigestStream();
    const body = await from.getObject(key, { signal });
    pipeline(body, digest, () => {}); // errors of either reach the upload through `digest`
    const stored = await to.putSnapshotObject(record.id, name, digest, { signal, onProgress: ({ loaded }) => progress.setTransferred(loaded) });
    progress.addBytes(stored.size);
    if (key === archive.key && (stored.size !== archive.size || stored.sha256 !== archive.sha256)) {
      throw new IntegrityError(
        `copy: snapshot ${record.id}: ${key} in repository ${from.name} differs from its record ` +
          `(${stored.size} bytes, sha256 ${stored.sha256}; record says ${archive.size} bytes, sha256 ${archive.sha256}); not copied`,
      );
    }
  }
  return record;
}

/** Reads the snapshot's entries through its format and writes them with the target's; the record keeps every field but the stored ones. */
async function copyEntries(request: CopySnapshotsRequest, record: SnapshotRecord, targetFormat: SnapshotFormat): Promise<SnapshotRecord> {
  const { from, to, signal, progress } = request;
  progress.setPhase('downloading');
  progress.setTotal(record.stats.rawBytes);
  const reader = await formatOf(record).open({ repository: from, record, signal, progress, sealKeys: request.sealKeys });
  try {
    const { snapshotId, createdAt, source, labels, tool } = reader.manifest;
    const manifest: SnapshotManifest = { snapshotId, createdAt, source, labels, tool };
    const seal = record.sealKeyId !== undefined ? request.seal : undefined;
    const written = await targetFormat.write({
      repository: to,
      manifest,
      entries: asSourceEntries(reader.entries),
      estimatedBytes: record.stats.rawBytes,
      compression: record.archive?.compression,
      level: request.level,
      threads: request.threads,
      seal,
      signal,
      progress,
    });
    const { sealKeyId: _dropped, ...rest } = record;
    return {
      ...rest,
      format: targetFormat.name,
      ...written.fields,
      stats: { ...written.stats, durationSeconds: record.stats.durationSeconds },
    };
  } finally {
    await reader.close();
  }
}

/** A reader's entries as a writer takes them: each body handed over once, in order. */
async function* asSourceEntries(entries: AsyncIterable<SnapshotEntry>): AsyncGenerator<SourceEntry> {
  for await (const { header, body } of entries) yield body ? { ...header, open: () => body } : { ...header };
}
