import type { SnapshotRecord } from '../catalog/snapshot-record.js';
import type { Repository } from '../catalog/repository.js';
import { InvalidInputError, NotFoundError, SnapworkerError } from '../errors.js';
import type { Compression } from '../formats/archive/manifest.js';
import type { SealKey } from '../formats/archive/seal.js';
import { formatNamed, formatOf } from '../formats/registry.js';
import type { SnapshotFormat, SnapshotParent } from '../formats/snapshot-format.js';
import type { ProgressSink } from '../progress.js';
import { NoticeCollector } from '../kinds/notice-collector.js';
import { sealRecordNotices } from '../crypto/sealed-notices.js';
import type { EntryNotice } from '../kinds/notices.js';
import type { Source } from '../kinds/source.js';
import type { SnapshotManifest } from '../snapshot/manifest.js';
import { TOOL } from '../tool.js';

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
  /**
   * The snapshot format to write (shared/formats/registry.ts); default: the one the repository's
   * `config.json` names, else `archive`.
   */
  format?: string;
  /**
   * Incremental formats (chunked): the parent snapshot to reuse unchanged files from, an id or
   * prefix; default the latest snapshot of the lineage in this format. `false`: none, every file
   * is read (restic's `--force`).
   * @throws InvalidInputError (from `takeSnapshot`) when set for a format without parents.
   */
  parent?: string | false;
  /** See `WriteSnapshotRequest.onUploadToken`: the queue worker keeps the token on the job. */
  onUploadToken?: (token: string) => void | Promise<void>;
  /**
   * Called with each of the first NAMED_NOTICES entries the source could not keep exactly, as
   * they come (for the job log and warning events). All of them are counted in the record.
   */
  onNotice?: (notice: EntryNotice) => void;
}

/**
 * Takes a snapshot: source → snapshot format's writer → repository, then writes the record last.
 * Nothing is listed unless every step succeeded; a failure removes what it stored (a crash leaves
 * at most an unlisted snapshot folder, which a retry of the same job overwrites and prune
 * removes). Entries the source could not keep exactly are counted and named in the record
 * (`notices`; `incomplete: true` when data was left out).
 * @throws InvalidInputError when the format asked for (or the repository's default) is unknown.
 */
export async function takeSnapshot(request: SnapshotRequest): Promise<SnapshotRecord> {
  const { source } = request;
  const attempt = { stored: false };
  try {
    return await writeSnapshot(request, attempt);
  } catch (err) {
    // A check or the record failed after the snapshot was stored: without a record it would be
    // unlisted, seen only by prune. Only what this attempt stored is removed.
    if (attempt.stored) await request.repository.delete(request.id).catch(() => {});
    throw err;
  } finally {
    await source.release?.();
  }
}

async function writeSnapshot(request: SnapshotRequest, attempt: { stored: boolean }): Promise<SnapshotRecord> {
  const { id, source, repository, signal, progress } = request;
  const format = formatNamed(request.format ?? (await repository.snapshotFormat({ signal })));
  if (request.parent !== undefined && !format.findParent) {
    throw new InvalidInputError(`snapshot: the ${format.name} format takes no parent snapshot (--parent and --force apply to the chunked format)`);
  }
  const startedAt = Date.now();
  progress.setPhase('reading');
  const estimatedBytes = await source.estimateBytes?.(signal);
  progress.setTotal(estimatedBytes);
  const notices = new NoticeCollector(request.onNotice);
  await source.prepare?.({ signal, progress, notices });
  const manifest: SnapshotManifest = {
    snapshotId: id,
    createdAt: new Date(startedAt).toISOString(),
    // A copy taken now: the record repeats what the manifest says, never a later state of the source.
    source: structuredClone(source.descriptor),
    labels: request.labels,
    tool: TOOL,
  };

  const parent = request.parent === false ? undefined : await format.findParent?.({ repository, source: manifest.source, parent: request.parent, signal });
  try {
    return await writeWith(format, request, { manifest, startedAt, estimatedBytes, notices, parent }, attempt);
  } finally {
    await parent?.close();
  }
}

async function writeWith(
  format: SnapshotFormat,
  request: SnapshotRequest,
  prepared: { manifest: SnapshotManifest; startedAt: number; estimatedBytes: number | undefined; notices: NoticeCollector; parent: SnapshotParent | undefined },
  attempt: { stored: boolean },
): Promise<SnapshotRecord> {
  const { id, source, repository, signal, progress } = request;
  const { manifest, startedAt, estimatedBytes, notices, parent } = prepared;
  const written = await format.write({
    repository,
    manifest,
    entries: source.entries({ signal, progress, notices, ...(parent ? { unchanged: parent } : {}) }),
    ...(parent ? { parent } : {}),
    estimatedBytes,
    compression: request.compression,
    level: request.level,
    threads: request.threads,
    seal: request.seal,
    signal,
    progress,
    onUploadToken: request.onUploadToken,
  });
  attempt.stored = true;

  progress.setPhase('committing');
  const noticeSummary = notices.summary();
  const record: SnapshotRecord = {
    v: 1,
    id,
    formatVersion: 1,
    format: format.name,
    source: manifest.source,
    labels: request.labels,
    createdAt: manifest.createdAt,
    completedAt: new Date().toISOString(),
    ...written.fields,
    stats: { ...written.stats, durationSeconds: (Date.now() - startedAt) / 1000 },
    ...(noticeSummary ? { notices: noticeSummary } : {}),
    ...(notices.incomplete ? { incomplete: true } : {}),
    tool: TOOL,
    ...(request.job ? { job: request.job } : {}),
  };
  // An encrypted repository stores the named notices sealed; the job's result keeps them readable.
  await repository.putRecord(await sealRecordNotices(repository, record, signal), { signal });
  await checkCommitted(repository, record, signal);
  return record;
}

/**
 * Record last, then look once more: a prune that took this snapshot for debris (its
 * `incompleteGrace` shorter than our commit) may have removed its objects between the writer's
 * check and the record. A record must never point at nothing, so it is withdrawn and the job
 * fails retryably; the next attempt writes a fresh snapshot.
 */
async function checkCommitted(repository: Repository, record: SnapshotRecord, signal: AbortSignal): Promise<void> {
  for (const key of formatOf(record).requiredKeys(record)) {
    try {
      await repository.head(key, { signal });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      await repository.delete(record.id, { signal });
      throw new SnapworkerError(`snapshot ${record.id}: ${key} was removed while committing (by a prune with a short incompleteGrace?); record withdrawn`, {
        cause: err,
      });
    }
  }
}
