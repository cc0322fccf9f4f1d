import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { writeArchive } from '../formats/archive/archive-writer.js';
import { ARCHIVE_FORMAT, ARCHIVE_FORMAT_VERSION } from '../formats/archive/manifest.js';
import type { ReadSummary, SnapshotEntry } from '../formats/snapshot-format.js';
import type { SourceEntry } from '../snapshot/entry.js';
import { settleAll } from './settle.js';
import { withEntries, type ReadSnapshotRequest } from './restore-snapshot.js';

/**
 * Writes any snapshot, whatever its format, as a format-v1 archive (docs/archive-format.md:
 * manifest, payload, SHA256SUMS; zstd) to `output`, so stock tools read it:
 * `snapworker export ID | zstd -d | tar -x && sha256sum -c SHA256SUMS`. The entries come from the
 * snapshot's reader, checked as verify checks them, straight into the archive writer (streamed:
 * memory does not grow with the snapshot). The manifest is the snapshot's own (same id, time,
 * source, labels). When a check fails the archive is cut short, so `zstd -d` fails too.
 * @throws whatever the reader or the output throws (IntegrityError for a damaged snapshot).
 */
export async function exportSnapshot(request: ReadSnapshotRequest & { output: Writable; level?: number; threads?: number }): Promise<ReadSummary> {
  request.progress.setPhase('reading');
  return withEntries(request, async (reader, entries) => {
    const archive = writeArchive({
      manifest: { ...reader.manifest, format: ARCHIVE_FORMAT, version: ARCHIVE_FORMAT_VERSION, compression: 'zstd' },
      entries: asSourceEntries(entries),
      level: request.level,
      threads: request.threads,
      signal: request.signal,
      progress: request.progress,
    });
    await settleAll([pipeline(archive.stream, request.output, { end: false }), archive.done], () => archive.stream.destroy());
    return reader.summary();
  });
}

/** A reader's entries as a writer takes them: each file's body is what `open` returns, once. */
async function* asSourceEntries(entries: AsyncIterable<SnapshotEntry>): AsyncGenerator<SourceEntry> {
  for await (const { header, body } of entries) {
    yield body ? { ...header, open: () => body } : header;
  }
}
