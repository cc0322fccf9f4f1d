import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream';
import type { Repository } from '../../catalog/repository.js';
import { checksumHeader, type SnapshotRecord } from '../../catalog/snapshot-record.js';
import { DigestStream } from '../../digest-stream.js';
import { IntegrityError, SnapworkerError } from '../../errors.js';
import { settleAll } from '../../pipeline/settle.js';
import type { ListedEntry, SnapshotFormat, SnapshotEntry, SnapshotReader, OpenSnapshotRequest, WriteSnapshotRequest, WrittenSnapshot } from '../snapshot-format.js';
import { openArchiveEntries, type ArchiveEntries } from './archive-entries.js';
import { writeArchive, type TarLayout } from './archive-writer.js';
import { archiveFileName } from './compression.js';
import { ENTRY_INDEX_NAME, listedEntry } from './entry-index/entry-index.js';
import { readEntryIndex } from './entry-index/entry-index-reader.js';
import { openSelected } from './selected-reader.js';
import { EntryIndexWriter } from './entry-index/entry-index-writer.js';
import type { SeekableZstdCompressStream } from './seekable/frame-compressor.js';
import { AGE_SUFFIX, archiveDecryption, archiveEncryption } from './archive-encryption.js';
import { archiveOf } from './archive-of.js';
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
    const encryption = await archiveEncryption(repository, signal);
    const index = new EntryIndexWriter(manifest.snapshotId, compression);
    let layout: TarLayout | undefined;
    const archive = writeArchive({
      manifest,
      entries: request.entries,
      onEntryWritten: (header, offset, length, sha256) => index.entry(header, offset, length, sha256),
      onTarWritten: (written) => (layout = written),
      level: request.level,
      threads: request.estimatedBytes !== undefined && request.estimatedBytes < SMALL_SNAPSHOT_BYTES ? 0 : request.threads,
      seal: request.seal,
      signal,
      progress,
    });
    // Encryption is the outermost layer: the stored object is an age file of the compressed tar,
    // and the entry index (file names, sizes, sums) is an age file too.
    const body = encryption ? pipeline(archive.stream, encryption.encrypt(), () => {}) : archive.stream;
    const indexBody = encryption ? pipeline(index.stream, encryption.encrypt(), () => {}) : index.stream;
    const suffix = encryption ? AGE_SUFFIX : '';
    const upload = repository.putSnapshotObject(manifest.snapshotId, archiveFileName(compression) + suffix, body, {
      signal,
      onProgress: ({ loaded }) => progress.setTransferred(loaded),
      onUploadToken: request.onUploadToken,
    });
    // The index uploads beside the archive; it ends once the archive's tar and seek table are known.
    const indexUpload = repository.putSnapshotObject(manifest.snapshotId, ENTRY_INDEX_NAME + suffix, indexBody, { signal, onUploadToken: request.onUploadToken });
    const indexDone = archive.done.then(() => index.finish(layout!));
    // Any side may fail first; wait for all so no stream or upload outlives the job.
    const [stored, stats, storedIndex] = await settleAll([upload, archive.done, indexUpload, indexDone], (err) => {
      archive.stream.destroy();
      index.abort(err instanceof Error ? err : new SnapworkerError(String(err)));
    });
    const framed = (archive.stream as Partial<SeekableZstdCompressStream>).result;
    try {
      // Verify before trusting: the stored objects must be there with the sizes the driver reported.
      for (const object of [stored, storedIndex]) {
        const info = await repository.head(object.key, { signal });
        if (info.size !== object.size) throw new IntegrityError(`snapshot: stored object ${object.key} is ${info.size} bytes, ${object.size} were written`);
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
          index: { key: storedIndex.key, size: storedIndex.size, sha256: storedIndex.sha256 },
          // An age file cannot be read by ranges of the compressed stream: no seek table to use.
          ...(framed && !encryption
            ? { seekTable: { offset: framed.dataBytes, size: framed.seekTable.length, sha256: createHash('sha256').update(framed.seekTable).digest('hex') } }
            : {}),
        },
        ...(request.seal ? { sealKeyId: request.seal.keyId } : {}),
        ...(encryption ? { keyId: encryption.keyId } : {}),
      },
      stats: { entries: stats.entries, files: stats.files, rawBytes: stats.rawBytes, storedBytes: stored.size },
    };
  },

  async open(request: OpenSnapshotRequest): Promise<SnapshotReader> {
    const { repository, record, signal, progress, select } = request;
    if (select && record.keyId === undefined) {
      // Only the frames holding the selected entries, when the archive has an index and can seek
      // (an encrypted archive is read whole: docs/encryption.md).
      const index = await readEntryIndex(repository, record, signal);
      const partial = index && (await openSelected(request, index, select));
      if (partial) return partial;
    }
    const decrypt = await archiveDecryption(repository, record, signal);
    const stored = await repository.getObject(archiveOf(record).key, { signal, onProgress: ({ loaded }) => progress.setTransferred(loaded) });
    const digest = new DigestStream();
    // Errors of any stream reach the reader through the last one; the callback has nothing to add.
    const archive = decrypt ? pipeline(stored, digest, decrypt, () => {}) : pipeline(stored, digest, () => {});
    let entries: ArchiveEntries;
    try {
      entries = await openArchiveEntries(archive, {
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
    return new ArchiveSnapshotReader(entries, digest, record, select);
  },

  async listEntries(request: OpenSnapshotRequest): Promise<AsyncIterable<ListedEntry> | undefined> {
    const index = await readEntryIndex(request.repository, request.record, request.signal);
    if (!index) return undefined;
    const { select } = request;
    return (async function* () {
      for await (const line of index.entries) {
        if (select && !select(line.path, line.type)) continue;
        yield listedEntry(line);
      }
    })();
  },

  requiredKeys(record) {
    const archive = archiveOf(record);
    return archive.index ? [archive.key, archive.index.key] : [archive.key];
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
    select: OpenSnapshotRequest['select'],
  ) {
    this.manifest = archive.manifest;
    const entries = checkedAgainstRecord(archive, digest, record);
    // Read whole (no index, or gzip): every byte is still checked; unselected entries are drained.
    this.entries = select ? selected(entries, select) : entries;
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

async function* selected(entries: AsyncIterable<SnapshotEntry>, select: NonNullable<OpenSnapshotRequest['select']>): AsyncGenerator<SnapshotEntry> {
  for await (const entry of entries) {
    const { header } = entry;
    // A hard link whose first name is not selected is the caller's to refuse, never dropped here.
    if (!select(header.path, header.type)) continue;
    yield entry;
  }
}


/** The reader names the entry; only we know which stored archive it was reading. */
function named(err: unknown, record: SnapshotRecord): unknown {
  if (err instanceof SnapworkerError && err.message.startsWith('archive:')) err.message = `snapshot ${record.id} (${archiveOf(record).key}): ${err.message}`;
  return err;
}
