import { pipeline } from 'node:stream';
import { readArchive, type ReadResult } from '../formats/archive/archive-reader.js';
import type { Manifest } from '../formats/archive/manifest.js';
import type { Repository } from '../catalog/repository.js';
import type { SnapshotRecord } from '../catalog/snapshot-record.js';
import { DigestStream } from '../digest-stream.js';
import { IntegrityError, InvalidInputError, SnapworkerError } from '../errors.js';
import type { ProgressSink } from '../progress.js';
import type { RestoreResult, RestoreSession, RestoreTarget } from '../kinds/restore-target.js';

export interface ReadSnapshotRequest {
  repository: Repository;
  record: SnapshotRecord;
  signal: AbortSignal;
  progress: ProgressSink;
  /** Seal keys by key id; a sealed archive is checked when its key is known. */
  sealKeys?: Record<string, Buffer>;
  /** Called with the checked manifest before any payload entry. */
  onManifest?: (manifest: Manifest) => void | Promise<void>;
  onEntry?: Parameters<typeof readArchive>[1]['onEntry'];
}

/**
 * Streams a stored archive through the reader and checks it against its record: the manifest
 * names this snapshot, every entry matches its sum, and the stored bytes match the record's size
 * and SHA-256. Resolves only when all of that holds.
 */
export async function readSnapshot(request: ReadSnapshotRequest): Promise<ReadResult> {
  const { repository, record, signal, progress } = request;
  progress.setTotal(record.stats.rawBytes);
  const stored = await repository.openArchive(record, { signal, onProgress: ({ loaded }) => progress.setTransferred(loaded) });
  const digest = new DigestStream();
  // Errors of either stream reach the reader through `digest`; the callback has nothing to add.
  pipeline(stored, digest, () => {});
  const result = await readArchive(digest, {
    signal,
    progress,
    sealKeys: request.sealKeys,
    requireSeal: record.sealKeyId !== undefined,
    onManifest: async (manifest) => {
      if (manifest.snapshotId !== record.id) {
        throw new IntegrityError(`snapshot ${record.id}: archive manifest names snapshot ${manifest.snapshotId}`);
      }
      await request.onManifest?.(manifest);
    },
    onEntry: request.onEntry,
  }).catch((err: unknown) => {
    // The reader names the entry; only we know which stored archive it was reading.
    if (err instanceof SnapworkerError && err.message.startsWith('archive:')) err.message = `snapshot ${record.id} (${record.archive.key}): ${err.message}`;
    throw err;
  });
  if (digest.size !== record.archive.size || digest.sha256() !== record.archive.sha256) {
    throw new IntegrityError(
      `snapshot ${record.id}: stored archive ${record.archive.key} differs from its record ` +
        `(${digest.size} bytes, sha256 ${digest.sha256()}; record says ${record.archive.size} bytes, sha256 ${record.archive.sha256})`,
    );
  }
  return result;
}

export interface RestoreRequest extends Omit<ReadSnapshotRequest, 'onManifest' | 'onEntry'> {
  target: RestoreTarget;
  replace: boolean;
}

/**
 * Restores a snapshot into a target: entries are staged by the target while the archive is read
 * and checked, and committed only after the whole archive verified. Any failure aborts the
 * session, leaving the target exactly as it was.
 */
export async function restoreSnapshot(request: RestoreRequest): Promise<RestoreResult> {
  const { record, target, signal, progress } = request;
  if (!target.accepts.includes(record.source.kind)) {
    throw new InvalidInputError(
      `restore: snapshot ${record.id} holds a ${record.source.kind} source; target ${target.uri} takes ${target.accepts.join(', ')}`,
    );
  }
  let session: RestoreSession | undefined;
  try {
    progress.setPhase('downloading');
    await readSnapshot({
      ...request,
      onManifest: async (manifest) => {
        session = await target.begin(manifest, { signal, progress, replace: request.replace });
      },
      onEntry: (header, body) => session!.write(header, body),
    });
    if (!session) throw new IntegrityError(`snapshot ${record.id}: archive has no manifest`);
    progress.setPhase('committing');
    const committed = session.commit();
    session = undefined; // committed or failed inside commit: never abort after commit started
    return await committed;
  } catch (err) {
    await session?.abort();
    throw err;
  }
}

/** Reads a whole snapshot and checks every byte without writing anything. */
export async function verifySnapshot(request: Omit<ReadSnapshotRequest, 'onManifest' | 'onEntry'>): Promise<ReadResult> {
  request.progress.setPhase('verifying');
  return readSnapshot(request);
}
