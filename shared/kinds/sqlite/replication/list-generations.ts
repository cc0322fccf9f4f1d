import type { SignalOptions } from '../../../storage/storage-driver.js';
import type { WalPosition } from './replica-layout.js';
import type { ReplicaStore } from './replica-store.js';
import { SEGMENT_HEADER_SIZE } from './segment-format.js';

/** One generation as `ls --source <db> --generations` shows it. */
export interface GenerationSummary {
  generation: string;
  createdAt: string;
  /** `start`, or the break in the WAL chain that began it. */
  reason: string;
  snapshot: WalPosition & { size: number };
  segments: number;
  /** Bytes of all its segments as stored. */
  segmentBytes: number;
  /** The end of its last segment (the snapshot's position when it has none). */
  end: WalPosition;
  /** When its last segment was read: restorable up to here. */
  lastReadAt: string;
}

/**
 * The complete generations of a replica, oldest first, with their positions: what a restore
 * can reach. Reads every record and lists every segment key (no segment is read).
 */
export async function listGenerations(store: ReplicaStore, options?: SignalOptions): Promise<GenerationSummary[]> {
  const summaries: GenerationSummary[] = [];
  for (const generation of await store.generations(options)) {
    const record = await store.readGeneration(generation, options);
    const segments = (await store.walObjects(generation, options)).filter((object) => object.kind === 'segment');
    const last = segments.at(-1);
    const { index, offset, size } = record.snapshot;
    summaries.push({
      generation,
      createdAt: record.createdAt,
      reason: record.reason,
      snapshot: { index, offset, size },
      segments: segments.length,
      segmentBytes: segments.reduce((sum, segment) => sum + segment.size, 0),
      end: last ? { index: last.index, offset: last.offset + last.size - SEGMENT_HEADER_SIZE } : { index, offset },
      lastReadAt: (last?.readAt ?? new Date(record.createdAt)).toISOString(),
    });
  }
  return summaries;
}
