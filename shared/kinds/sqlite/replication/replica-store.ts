import { createHash } from 'node:crypto';
import { readBounded } from '../../../storage/read-all.js';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { IntegrityError } from '../../../errors.js';
import type { ReplicaStorage } from '../../../catalog/replica-storage.js';
import type { SignalOptions } from '../../../storage/storage-driver.js';
import { generationRecordSchema, type GenerationRecord } from './generation-record.js';
import {
  checkpointMarkerKey,
  comparePositions,
  generationPrefix,
  generationRecordKey,
  generationsPrefix,
  isGenerationId,
  parseWalObjectKey,
  segmentKey,
  segmentsPrefix,
  snapshotKey,
  checkReplicaName,
  type SegmentRef,
  type WalPosition,
} from './replica-layout.js';
import { encodeSegmentHeader, type SegmentHeader } from './segment-format.js';

/** A stored segment or checkpoint marker of one generation. */
export type WalObject = SegmentRef & { kind: 'segment' | 'checkpoint' };

/** Largest segment object a reader buffers; the replicator writes far smaller ones. */
const MAX_SEGMENT_OBJECT_BYTES = 1024 * 1024 * 1024;

/**
 * The replica of one database in a repository (layout in `replica-layout.ts`), on the
 * repository's `replicaStorage()` (or, in tests, any `StorageDriver`): every object goes through
 * the storage's atomic `put`, and a generation's record is written only after its snapshot, so a
 * reader never sees half a generation.
 */
export class ReplicaStore {
  constructor(
    private readonly storage: ReplicaStorage,
    readonly name: string,
  ) {
    checkReplicaName(name);
  }

  /** Ids of the generations that have a record, oldest first. */
  async generations(options?: SignalOptions): Promise<string[]> {
    return (await this.generationFolders(options)).filter((folder) => folder.complete).map((folder) => folder.generation);
  }

  /**
   * Every generation folder holding an object, with or without a record (a replicator that died
   * while snapshotting leaves one without), oldest first.
   */
  async generationFolders(options?: SignalOptions): Promise<{ generation: string; complete: boolean }[]> {
    const prefix = generationsPrefix(this.name);
    const folders = new Map<string, boolean>();
    for await (const object of this.storage.list(prefix, options)) {
      const [generation, file] = object.key.slice(prefix.length).split('/', 2);
      if (!generation || !isGenerationId(generation)) continue;
      folders.set(generation, folders.get(generation) === true || file === 'generation.json');
    }
    return [...folders.keys()].sort().map((generation) => ({ generation, complete: folders.get(generation)! }));
  }

  /**
   * Removes a generation: its record first, so it stops being chosen for a restore before any of
   * its objects disappear, then everything else in its folder.
   */
  async removeGeneration(generation: string, options?: SignalOptions): Promise<void> {
    await this.storage.delete(generationRecordKey(this.name, generation), options);
    for await (const object of this.storage.list(generationPrefix(this.name, generation), options)) {
      await this.storage.delete(object.key, options);
    }
  }

  /**
   * @throws NotFoundError when the generation has no record; IntegrityError when the record is not valid.
   */
  async readGeneration(generation: string, options?: SignalOptions): Promise<GenerationRecord> {
    const text = (await readBounded(await this.storage.get(generationRecordKey(this.name, generation), options), 1024 * 1024, 'generation record')).toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      throw new IntegrityError(`replica ${this.name}: generation ${generation}: record is not JSON`, { cause });
    }
    const result = generationRecordSchema.safeParse(parsed);
    if (!result.success || result.data.generation !== generation) {
      throw new IntegrityError(`replica ${this.name}: generation ${generation}: invalid record: ${result.success ? 'generation mismatch' : result.error.issues[0]?.message}`);
    }
    return result.data;
  }

  /** Segments and checkpoint markers of a generation, in position order (a marker after the segment it follows). */
  async walObjects(generation: string, options?: SignalOptions): Promise<WalObject[]> {
    const objects: WalObject[] = [];
    for await (const object of this.storage.list(segmentsPrefix(this.name, generation), options)) {
      const parsed = parseWalObjectKey(object.key, object.size);
      if (parsed) objects.push(parsed);
    }
    return objects.sort((a, b) => comparePositions(a, b) || (a.kind === b.kind ? 0 : a.kind === 'segment' ? -1 : 1));
  }

  /** Stores the snapshot file at `filePath` (size and SHA-256 computed while it streams). */
  async putSnapshot(generation: string, at: WalPosition, filePath: string, options?: SignalOptions): Promise<{ key: string; size: number; sha256: string }> {
    const key = snapshotKey(this.name, generation, at);
    const result = await this.storage.put(key, createReadStream(filePath), options);
    return { key, size: result.size, sha256: result.sha256 };
  }

  /** Commits a generation: call only after its snapshot is stored. */
  async putGeneration(record: GenerationRecord, options?: SignalOptions): Promise<void> {
    const body = Buffer.from(JSON.stringify(record, null, 2) + '\n');
    await this.storage.put(generationRecordKey(this.name, record.generation), Readable.from([body]), { ...options, size: body.length });
  }

  /** Stores frames read at `readAt` as the segment starting at `at`; resolves with its stored size. */
  async putSegment(generation: string, at: WalPosition, readAt: Date, header: SegmentHeader, frames: Buffer, options?: SignalOptions): Promise<number> {
    const body = Buffer.concat([encodeSegmentHeader(header), frames]);
    await this.storage.put(segmentKey(this.name, generation, at, readAt), Readable.from([body]), { ...options, size: body.length });
    return body.length;
  }

  /** Records that the WAL of `at.index` was checkpointed into the database up to `at.offset`. */
  async putCheckpointMarker(generation: string, at: WalPosition, options?: SignalOptions): Promise<void> {
    await this.storage.put(checkpointMarkerKey(this.name, generation, at, new Date()), Readable.from([Buffer.alloc(0)]), { ...options, size: 0 });
  }

  /** The whole object, refusing one larger than a segment can be. */
  async readObject(key: string, options?: SignalOptions): Promise<Buffer> {
    return readBounded(await this.storage.get(key, options), MAX_SEGMENT_OBJECT_BYTES, key);
  }

  /** Streams the snapshot of `record`, failing the stream's consumer on a size or SHA-256 mismatch. */
  async openSnapshot(record: GenerationRecord, options?: SignalOptions): Promise<AsyncGenerator<Buffer>> {
    const stream = await this.storage.get(record.snapshot.key, options);
    const what = `replica ${this.name}: snapshot ${record.snapshot.key}`;
    return (async function* checked() {
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
        yield chunk;
      }
      const sha256 = hash.digest('hex');
      if (size !== record.snapshot.size || sha256 !== record.snapshot.sha256) {
        throw new IntegrityError(`${what}: stored ${size} bytes with SHA-256 ${sha256}, the record says ${record.snapshot.size} bytes, ${record.snapshot.sha256}`);
      }
    })();
  }
}
