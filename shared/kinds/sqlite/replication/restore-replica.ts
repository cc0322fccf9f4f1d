import { randomBytes } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { IntegrityError, InvalidInputError, NotFoundError, throwIfAborted } from '../../../errors.js';
import { checkDatabaseIntegrity, type IntegrityCheckMode } from '../check-integrity.js';
import { removeSideFiles } from '../durable-fs.js';
import { assertPlaceable, swapIn } from '../swap-in.js';
import type { GenerationRecord } from './generation-record.js';
import type { ReplicaStore, WalObject } from './replica-store.js';
import { checkSegmentFrames, SEGMENT_HEADER_SIZE, type SegmentHeader } from './segment-format.js';
import { sameChecksum, WAL_HEADER_SIZE, type WalChecksum } from './wal-format.js';

/**
 * Which state to restore: the newest by default; `timestamp` for every transaction the replica
 * holds that committed before it; `generation` (with an optional `index`) for the end of that
 * generation, or of WAL index `index` in it.
 */
export interface ReplicaPoint {
  generation?: string;
  index?: number;
  timestamp?: Date;
}

/** What a restore put together. */
export interface ReplicaRestoreResult {
  generation: string;
  /** The WAL position restored up to (the snapshot's when no segment applied). */
  index: number;
  offset: number;
  segments: number;
  /** When the last applied segment was read: its transactions committed before this. */
  upTo: Date;
}

/**
 * Restores the replica at `point` into `targetPath`: the generation's snapshot (size and SHA-256
 * checked), then its segments in position order, each frame's salts and checksum checked and
 * each segment checked to continue the one before, applied page by page as a checkpoint would
 * (every segment ends with a commit: whole transactions only). Then `integrity_check` (or
 * `quick_check`), then the same swap as the SQLite restore target: side files set aside,
 * rename, fsync of the directory. Memory holds one segment at a time.
 *
 * @throws InvalidInputError for a point that cannot be (an index without a generation, a target
 *   that exists without `replace`); NotFoundError when no generation holds the point;
 *   IntegrityError when an object fails a check or the chain has a gap. The target is untouched
 *   on any failure.
 */
export async function restoreReplica(
  store: ReplicaStore,
  point: ReplicaPoint,
  targetPath: string,
  options: { replace?: boolean; check?: IntegrityCheckMode; signal?: AbortSignal } = {},
): Promise<ReplicaRestoreResult> {
  if (point.index !== undefined && point.generation === undefined) throw new InvalidInputError('restore: replica.index needs replica.generation');
  if (point.timestamp && point.generation) throw new InvalidInputError('restore: give replica.timestamp or replica.generation, not both');
  await assertPlaceable(targetPath, options.replace ?? false);
  const record = await chooseGeneration(store, point, options.signal);
  const objects = await store.walObjects(record.generation, { signal: options.signal });
  const tempPath = path.join(path.dirname(targetPath), `.${path.basename(targetPath)}.snapworker-${randomBytes(6).toString('hex')}.tmp`);
  const what = `replica ${store.name}: generation ${record.generation}`;
  try {
    const result = await writeRestoredFile(store, record, objects, point, tempPath, what, options.signal);
    await checkDatabaseIntegrity(tempPath, options.check ?? 'integrity', `restore ${what}`, options.signal);
    throwIfAborted(options.signal);
    await assertPlaceable(targetPath, options.replace ?? false);
    await swapIn({ target: targetPath, tempPath });
    return result;
  } catch (err) {
    await rm(tempPath, { force: true });
    await removeSideFiles(tempPath);
    throw err;
  }
}

/** The generation that holds `point`: the given one, the newest started by `timestamp`, or the newest. */
async function chooseGeneration(store: ReplicaStore, point: ReplicaPoint, signal?: AbortSignal): Promise<GenerationRecord> {
  const generations = await store.generations({ signal });
  if (point.generation) {
    if (!generations.includes(point.generation)) throw new NotFoundError(`replica ${store.name}: no generation ${point.generation}`);
    return store.readGeneration(point.generation, { signal });
  }
  for (const generation of generations.reverse()) {
    const record = await store.readGeneration(generation, { signal });
    if (!point.timestamp || new Date(record.createdAt) <= point.timestamp) return record;
  }
  throw new NotFoundError(
    point.timestamp ? `replica ${store.name}: no generation was stored before ${point.timestamp.toISOString()}` : `replica ${store.name}: no generation stored`,
  );
}

async function writeRestoredFile(
  store: ReplicaStore,
  record: GenerationRecord,
  objects: WalObject[],
  point: ReplicaPoint,
  tempPath: string,
  what: string,
  signal?: AbortSignal,
): Promise<ReplicaRestoreResult> {
  const handle = await open(tempPath, 'wx', 0o644);
  try {
    for await (const chunk of await store.openSnapshot(record, { signal })) {
      throwIfAborted(signal);
      await handle.write(chunk);
    }
    const { snapshot } = record;
    let index = snapshot.index;
    let offset = snapshot.offset;
    let wal: ChainAt['wal'] =
      snapshot.checksum && snapshot.salt1 !== undefined && snapshot.salt2 !== undefined && snapshot.checkpointSequence !== undefined
        ? { salt1: snapshot.salt1, salt2: snapshot.salt2, checkpointSequence: snapshot.checkpointSequence, checksum: snapshot.checksum }
        : undefined;
    let backfilled = false;
    let segments = 0;
    let upTo = new Date(record.createdAt);
    for (const object of objects) {
      if (object.kind === 'checkpoint') {
        if (object.index === index && object.offset === offset) backfilled = true;
        continue;
      }
      if (point.index !== undefined && object.index > point.index) break;
      if (point.timestamp && object.readAt > point.timestamp) break;
      throwIfAborted(signal);
      const { header, frames, checksum } = checkSegmentFrames(await store.readObject(object.key, { signal }), object.key);
      if (!continuesChain(object, header, { index, offset, wal, backfilled })) {
        throw new IntegrityError(`${what}: segment ${object.key} does not continue the WAL chain at index ${index}, offset ${offset}`);
      }
      if (header.pageSize !== record.pageSize) throw new IntegrityError(`${what}: segment ${object.key} has page size ${header.pageSize}, the snapshot ${record.pageSize}`);
      for (const frame of frames) {
        await handle.write(frame.page, 0, frame.page.length, (frame.pageNumber - 1) * header.pageSize);
        if (frame.commitSize !== 0) await handle.truncate(frame.commitSize * header.pageSize);
      }
      index = object.index;
      offset = object.offset + object.size - SEGMENT_HEADER_SIZE;
      wal = { salt1: header.salt1, salt2: header.salt2, checkpointSequence: header.checkpointSequence, checksum };
      backfilled = false;
      segments++;
      upTo = object.readAt;
    }
    await handle.sync();
    return { generation: record.generation, index, offset, segments, upTo };
  } finally {
    await handle.close();
  }
}

interface ChainAt {
  index: number;
  offset: number;
  wal: { salt1: number; salt2: number; checkpointSequence: number; checksum: WalChecksum } | undefined;
  backfilled: boolean;
}

/**
 * Whether a segment continues the chain restored so far: in the same WAL it starts where the
 * last one ended, with the same salts and the running checksum; a new WAL (first frame, other
 * salts) only after a snapshot of an empty WAL (same index) or a checkpoint marker saying the
 * replicator moved the whole previous WAL into the database (next index).
 */
function continuesChain(object: WalObject, header: SegmentHeader, chain: ChainAt): boolean {
  if (object.index === chain.index && chain.offset !== 0) {
    return (
      object.offset === chain.offset &&
      !!chain.wal &&
      header.salt1 === chain.wal.salt1 &&
      header.salt2 === chain.wal.salt2 &&
      header.checkpointSequence === chain.wal.checkpointSequence &&
      sameChecksum(header.previousChecksum, chain.wal.checksum)
    );
  }
  if (object.offset !== WAL_HEADER_SIZE) return false;
  if (object.index === chain.index && chain.offset === 0) return true;
  // The WAL restarted exactly once after the checkpoint: SQLite adds one to salt-1 and to the sequence.
  return (
    chain.backfilled &&
    object.index === chain.index + 1 &&
    !!chain.wal &&
    header.salt1 === ((chain.wal.salt1 + 1) >>> 0) &&
    header.checkpointSequence === ((chain.wal.checkpointSequence + 1) >>> 0)
  );
}
