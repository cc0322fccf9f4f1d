import { pipeline } from 'node:stream';
import type { Repository } from '../../catalog/repository.js';
import { checksumHeader, type SnapshotRecord } from '../../catalog/snapshot-record.js';
import { DigestStream } from '../../digest-stream.js';
import { IntegrityError, SnapworkerError } from '../../errors.js';
import { settleAll } from '../../pipeline/settle.js';
import type { SnapshotFormat, SnapshotEntry, SnapshotReader, OpenSnapshotRequest, WriteSnapshotRequest, WrittenSnapshot } from '../snapshot-format.js';
import { openArchiveEntries, type ArchiveEntries } from './archive-entries.js';
import { writeArchive } from './archive-writer.js';
import { archiveFileName } from './compression.js';
import { ARCHIVE_FORMAT, ARCHIVE_FORMAT_VERSION, type Manifest } from './manifest.js';

/**
 * Multithreaded zstd pays off only on sizeable inputs: its per-thread buffers cost more than they
 * save on small snapshots (measured: most of a tiny job's CPU went to setting them up), and many
 * small jobs are a common load. Unknown sizes keep the configured threads.
 */
const SMALL_SNAPSHOT_BYTES = 8 * 1024 * 1024;

/**
 * The archive format (v1, docs/archive-format.md): one tar per snapshot with `manifest.json`
 * first and `SHA256SUMS` last, compressed, at `snapshots/<id>/archive.tar.zst` (or `.tar.gz`,
 * `.tar`), readable with stock tools. Every object of a snapshot lives in its folder, so deleting
 * the folder deletes the snapshot and there is nothing shared to collect.
 */
export const archiveFormat: SnapshotFormat = {
  name: 'archive',

  async write(request: WriteSnapshotRequest): Promise<WrittenSnapshot> {
    const { repository, signal, progress } = request;
    const compression = request.compression ?? 'zstd';
    const manifest: Manifest = {
      ...request.manifest,
      format: ARCHIVE_FORMAT,
      version: ARCHIVE_FORMAT_VERSION,
      compression,
    };
    const archive = writeArchive({
      manifest,
      entries: request.entries,
      level: request.level,
      threads: request.estimatedBytes !== undefined && request.estimatedBytes < SMALL_SNAPSHOT_BYTES ? 0 : request.threads,
      seal: request.seal,
      signal,
      progress,
    });
    const upload = repository.putSnapshotObject(manifest.snapshotId, archiveFileName(compression), archive.stream, {
      signal,
      onProgress: ({ loaded }) => progress.setTransferred(loaded),
      onUploadToken: request.onUploadToken,
    });
    // Either side may fail first; wait for both so no stream or upload outlives the job.
    const [stored, stats] = await settleAll([upload, archive.done], () => archive.stream.destroy());
    try {
      // Verify before trusting: the stored object must be there with the size the driver reported.
      const info = await repository.head(stored.key, { signal });
      if (info.size !== stored.size) {
        throw new IntegrityError(`snapshot: stored archive ${stored.key} is ${info.size} bytes, ${stored.size} were written`);
      }
    } catch (err) {
      await repository.delete(manifest.snapshotId).catch(() => {});
      throw err;
    }
    return {
      fields: {
        archive: {
          key: stored.key,
          compression,
          size: stored.size,
          sha256: stored.sha256,
          checksum: checksumHeader(stored.sha256),
          ...(stored.parts ? { parts: stored.parts } : {}),
        },
        ...(request.seal ? { sealKeyId: request.seal.keyId } : {}),
      },
      stats: { entries: stats.entries, files: stats.files, rawBytes: stats.rawBytes, storedBytes: stored.size },
    };
  },

  async open(request: OpenSnapshotRequest): Promise<SnapshotReader> {
    const { repository, record, signal, progress } = request;
    const stored = await repository.getObject(archiveOf(record).key, { signal, onProgress: ({ loaded }) => progress.setTransferred(loaded) });
    const digest = new DigestStream();
    // Errors of either stream reach the reader through `digest`; the callback has nothing to add.
    pipeline(stored, digest, () => {});
    let entries: ArchiveEntries;
    try {
      entries = await openArchiveEntries(digest, {
        signal,
        progress,
        sealKeys: request.sealKeys,
        requireSeal: record.sealKeyId !== undefined,
      });
    } catch (err) {
      stored.destroy();
      throw named(err, record);
    }
    if (entries.manifest.snapshotId !== record.id) {
      await entries.close();
      throw new IntegrityError(`snapshot ${record.id}: archive manifest names snapshot ${entries.manifest.snapshotId}`);
    }
    return new ArchiveSnapshotReader(entries, digest, record);
  },

  requiredKeys(record) {
    return [archiveOf(record).key];
  },

  downloadKey(record) {
    return archiveOf(record).key;
  },

  delete(repository: Repository, record: SnapshotRecord, options) {
    return repository.delete(record.id, options);
  },
};

/** The archive's entries, checked at the end against the record's size and SHA-256 of the stored bytes. */
class ArchiveSnapshotReader implements SnapshotReader {
  readonly manifest: Manifest;
  readonly entries: AsyncIterable<SnapshotEntry>;

  constructor(
    private readonly archive: ArchiveEntries,
    digest: DigestStream,
    record: SnapshotRecord,
  ) {
    this.manifest = archive.manifest;
    this.entries = checkedAgainstRecord(archive, digest, record);
  }

  summary() {
    const result = this.archive.result;
    if (!result) throw new SnapworkerError('archive: summary asked for before the whole archive was read');
    return { entries: result.entries, files: result.files, rawBytes: result.rawBytes, sealed: result.sealed };
  }

  close(): Promise<void> {
    return this.archive.close();
  }
}

async function* checkedAgainstRecord(archive: ArchiveEntries, digest: DigestStream, record: SnapshotRecord): AsyncGenerator<SnapshotEntry> {
  try {
    yield* archive;
  } catch (err) {
    throw named(err, record);
  }
  if (digest.size !== archiveOf(record).size || digest.sha256() !== archiveOf(record).sha256) {
    throw new IntegrityError(
      `snapshot ${record.id}: stored archive ${archiveOf(record).key} differs from its record ` +
        `(${digest.size} bytes, sha256 ${digest.sha256()}; record says ${archiveOf(record).size} bytes, sha256 ${archiveOf(record).sha256})`,
    );
  }
}

/** The record's archive. @throws IntegrityError when an archive-format record has none. */
function archiveOf(record: SnapshotRecord): NonNullable<SnapshotRecord['archive']> {
  if (!record.archive) throw new IntegrityError(`snapshot ${record.id}: archive record without an archive`);
  return record.archive;
}

/** The reader names the entry; only we know which stored archive it was reading. */
function named(err: unknown, record: SnapshotRecord): unknown {
  if (err instanceof SnapworkerError && err.message.startsWith('archive:')) err.message = `snapshot ${record.id} (${archiveOf(record).key}): ${err.message}`;
  return err;
}
