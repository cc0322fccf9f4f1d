import type { Repository } from '../../shared/catalog/repository.js';
import type { SnapshotRecord } from '../../shared/catalog/snapshot-record.js';
import { mapOrdered } from '../../shared/fsutil/map-ordered.js';
import { newSnapshotId } from '../../shared/ids.js';

/**
 * A record of a snapshot of `lineage` taken at `at`, with no archive behind it: the catalog reads
 * only records (and `ls` only summaries), so tests and the bench can make thousands cheaply.
 */
export function fakeRecord(lineage: string, labels: Record<string, string> = {}, at = new Date()): SnapshotRecord {
  const id = newSnapshotId(at);
  return {
    v: 1,
    id,
    formatVersion: 1,
    source: { kind: 'dir', uri: `dir:///data/${lineage}`, name: lineage },
    labels,
    createdAt: at.toISOString(),
    completedAt: new Date().toISOString(),
    archive: { key: `snapshots/${id}/archive.tar.zst`, compression: 'zstd', size: 1234, sha256: '0'.repeat(64), checksum: 'sha-256=' },
    stats: { entries: 1, files: 1, rawBytes: 1234, storedBytes: 1234, durationSeconds: 0.1 },
    tool: { name: 'snapworker', version: 'test' },
  };
}

/** Commits `count` fake snapshots of `lineage` through `putRecord`, `concurrency` at a time; resolves with their ids. */
export async function commitFakeSnapshots(repository: Repository, lineage: string, count: number, concurrency: number): Promise<string[]> {
  const ids: string[] = [];
  const commit = async (): Promise<string> => {
    const record = fakeRecord(lineage);
    await repository.putRecord(record);
    return record.id;
  };
  for await (const id of mapOrdered(Array.from({ length: count }), concurrency, commit)) ids.push(id);
  return ids;
}
