import { writeArchive } from '../formats/archive/archive-writer.js';
import { ARCHIVE_FORMAT, ARCHIVE_FORMAT_VERSION, type Compression, type Manifest } from '../formats/archive/manifest.js';
import type { SealKey } from '../formats/archive/seal.js';
import { checksumHeader, type SnapshotRecord } from '../catalog/snapshot-record.js';
import type { Repository } from '../catalog/repository.js';
import { IntegrityError, NotFoundError, SnapworkerError } from '../errors.js';
import type { ProgressSink } from '../progress.js';
import { NoticeCollector } from '../kinds/notice-collector.js';
import type { EntryNotice } from '../kinds/notices.js';
import type { Source } from '../kinds/source.js';
import type { PutResult } from '../storage/storage-driver.js';
import { TOOL } from '../tool.js';
import { settleAll } from './settle.js';

export interface SnapshotRequest {
  id: string;
  source: Source;
  repository: Repository;
  labels: Record<string, string>;
  compression: Compression;
  /** Compression level (zstd default 3). */
  level?: number;
  /** zstd worker threads. */
  threads?: number;
  seal?: SealKey;
  signal: AbortSignal;
  progress: ProgressSink;
  /** The queued job this snapshot belongs to, recorded for traceability. */
  job?: { id: string; queue: string };
  /** Passed to the storage driver: lets the caller record an S3 multipart upload id. */
  onUploadStarted?: (uploadId: string) => void | Promise<void>;
  /**
   * Called with each of the first NAMED_NOTICES entries the source could not keep exactly, as
   * they come (for the job log and warning events). All of them are counted in the record.
   */
  onNotice?: (notice: EntryNotice) => void;
}

/**
 * Takes a snapshot: source → archive writer → storage, then writes the record last. Nothing is
 * listed unless every step succeeded; a failure removes what it stored (a crash leaves at most an
 * unlisted archive, which a retry of the same job overwrites and prune removes). Entries the
 * source could not keep exactly are counted and named in the record (`notices`;
 * `incomplete: true` when data was left out).
 */
export async function takeSnapshot(request: SnapshotRequest): Promise<SnapshotRecord> {
  const { source } = request;
  const attempt = { archiveStored: false };
  try {
    return await writeSnapshot(request, attempt);
  } catch (err) {
    // A check or the record failed after the archive was stored: without a record it would be
    // unlisted, seen only by prune. Only what this attempt stored is removed.
    if (attempt.archiveStored) await request.repository.delete(request.id).catch(() => {});
    throw err;
  } finally {
    await source.release?.();
  }
}

async function writeSnapshot(request: SnapshotRequest, attempt: { archiveStored: boolean }): Promise<SnapshotRecord> {
  const { id, source, repository, signal, progress } = request;
  const startedAt = Date.now();
  progress.setPhase('reading');
  const estimatedBytes = await source.estimateBytes?.(signal);
  progress.setTotal(estimatedBytes);
  const notices = new NoticeCollector(request.onNotice);
  await source.prepare?.({ signal, progress, notices });
  const manifest: Manifest = {
    format: ARCHIVE_FORMAT,
    version: ARCHIVE_FORMAT_VERSION,
    snapshotId: id,
    createdAt: new Date(startedAt).toISOString(),
    // A copy taken now: the record repeats what the manifest says, never a later state of the source.
    source: structuredClone(source.descriptor),
    labels: request.labels,
    compression: request.compression,
    tool: TOOL,
  };

  const archive = writeArchive({
    manifest,
    entries: source.entries({ signal, progress, notices }),
    level: request.level,
    threads: compressionThreads(request.threads, estimatedBytes),
    seal: request.seal,
    signal,
    progress,
  });
  const upload = repository.putArchive(id, request.compression, archive.stream, {
    signal,
    onProgress: ({ loaded }) => progress.setTransferred(loaded),
    onUploadStarted: request.onUploadStarted,
  });
  // Either side may fail first; wait for both so no stream or upload outlives the job.
  const [stored, stats] = await settleAll([upload, archive.done], () => archive.stream.destroy());
  attempt.archiveStored = true;

  progress.setPhase('committing');
  await checkStored(repository, stored, signal);
  const noticeSummary = notices.summary();
  const record: SnapshotRecord = {
    v: 1,
    id,
    formatVersion: ARCHIVE_FORMAT_VERSION,
    source: manifest.source,
    labels: request.labels,
    createdAt: manifest.createdAt,
    completedAt: new Date().toISOString(),
    archive: {
      key: stored.key,
      compression: request.compression,
      size: stored.size,
      sha256: stored.sha256,
      checksum: checksumHeader(stored.sha256),
      ...(stored.parts ? { parts: stored.parts } : {}),
    },
    stats: {
      entries: stats.entries,
      files: stats.files,
      rawBytes: stats.rawBytes,
      storedBytes: stored.size,
      durationSeconds: (Date.now() - startedAt) / 1000,
    },
    ...(request.seal ? { sealKeyId: request.seal.keyId } : {}),
    ...(noticeSummary ? { notices: noticeSummary } : {}),
    ...(notices.incomplete ? { incomplete: true } : {}),
    tool: TOOL,
    ...(request.job ? { job: request.job } : {}),
  };
  await repository.putRecord(record, { signal });
  await checkCommitted(repository, record, signal);
  return record;
}

/**
 * Record last, then look once more: a prune that took this snapshot for debris (its
 * `incompleteGrace` shorter than our commit) may have removed the archive between the check above
 * and the record. A record must never point at nothing, so it is withdrawn and the job fails
 * retryably; the next attempt writes a fresh snapshot.
 */
async function checkCommitted(repository: Repository, record: SnapshotRecord, signal: AbortSignal): Promise<void> {
  try {
    await repository.driver.head(record.archive.key, { signal });
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    await repository.delete(record.id, { signal });
    throw new SnapworkerError(`snapshot ${record.id}: archive ${record.archive.key} was removed while committing (by a prune with a short incompleteGrace?); record withdrawn`, {
      cause: err,
    });
  }
}

/**
 * Multithreaded zstd pays off only on sizeable inputs: its per-thread buffers cost more than they
 * save on small snapshots (measured: most of a tiny job's CPU went to setting them up), and many
 * small jobs are a common load. Unknown sizes keep the configured threads.
 */
const SMALL_SNAPSHOT_BYTES = 8 * 1024 * 1024;
function compressionThreads(configured: number | undefined, estimatedBytes: number | undefined): number | undefined {
  return estimatedBytes !== undefined && estimatedBytes < SMALL_SNAPSHOT_BYTES ? 0 : configured;
}

/** Verify before trusting: the stored object must be there with the size the driver reported. */
async function checkStored(repository: Repository, stored: PutResult, signal: AbortSignal): Promise<void> {
  const info = await repository.driver.head(stored.key, { signal });
  if (info.size !== stored.size) {
    throw new IntegrityError(`snapshot: stored archive ${stored.key} is ${info.size} bytes, ${stored.size} were written`);
  }
}
