import { PassThrough } from 'node:stream';
import type { SnapshotRecord } from '../../catalog/snapshot-record.js';
import { AbortedError, IntegrityError, SnapworkerError, withSubject } from '../../errors.js';
import type { ProgressSink } from '../../progress.js';
import type { SnapshotManifest } from '../../snapshot/manifest.js';
import { dataBytes } from '../../snapshot/sparse-segments.js';
import { EntryTracker, showPath } from '../archive/safe-path.js';
import { contentHash } from '../archive/sparse-content.js';
import { waitForDrain } from '../archive/stream-wait.js';
import type { ReadSummary, SnapshotEntry, SnapshotReader } from '../snapshot-format.js';
import type { BlobStore } from './store/blob-store.js';
import { headerOf, type TreeNode } from './tree-node.js';
import { walkTree, type WalkedNode } from './tree-walk.js';

/**
 * Ranged pack reads in flight ahead of the consumer, across files (`BlobStore.loadMany`: each
 * read covers the wanted blobs lying close together in one pack, up to 16 MiB). restic's
 * restorer downloads whole packs with 8 workers; 3 reads of at most 16 MiB keep two cores busy
 * here and bound memory to about 3 × 16 MiB stored plus what those blobs decompress to.
 */
const PACK_READS_AHEAD = 3;
const BODY_HIGH_WATER = 1024 * 1024;

/** The manifest a chunked snapshot hands back: the record carries every field of it. */
export function manifestOf(record: SnapshotRecord): SnapshotManifest {
  return {
    snapshotId: record.id,
    createdAt: record.createdAt,
    source: structuredClone(record.source),
    labels: { ...record.labels },
    tool: { name: 'snapworker', version: record.tool.version },
  };
}

/**
 * A chunked snapshot read back (restore, verify, export): entries in tree order, each file's body
 * streamed from its chunks, which are loaded in ranged pack reads ahead of it across files.
 * Every chunk is checked by the store (its id is the keyed hash of its content); every file's
 * size and SHA-256 against its tree node; paths and links as the archive reader checks them. A
 * body left unread is still loaded and checked when the next entry is asked for.
 */
export class ChunkedSnapshotReader implements SnapshotReader {
  readonly manifest: SnapshotManifest;
  readonly entries: AsyncIterable<SnapshotEntry>;
  private result: ReadSummary | undefined;
  private readonly stop = new AbortController();
  private closed = false;

  constructor(
    private readonly store: BlobStore,
    private readonly record: SnapshotRecord,
    root: string,
    options: { signal: AbortSignal; progress: ProgressSink; select?: (path: string) => boolean },
  ) {
    this.manifest = manifestOf(record);
    const signal = AbortSignal.any([options.signal, this.stop.signal]);
    this.entries = this.read(root, signal, options.progress, options.select);
  }

  summary(): ReadSummary {
    if (!this.result) throw new SnapworkerError('chunked: summary asked for before the whole snapshot was read');
    return this.result;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stop.abort(new AbortedError('chunked: reader closed'));
    await this.store.close();
  }

  private async *read(root: string, signal: AbortSignal, progress: ProgressSink, select: ((path: string) => boolean) | undefined): AsyncGenerator<SnapshotEntry> {
    const where = `snapshot ${this.record.id}`;
    const tracker = new EntryTracker();
    const counts = { entries: 0, files: 0, rawBytes: 0 };
    const units = loadChunks(this.store, fileUnits(walkTree(this.store, root, { signal, where }), select), signal);
    let openBody: PassThrough | undefined;
    try {
      let unit = await units.next();
      while (!unit.done) {
        const { item } = unit.value;
        const header = headerOf(item.path, item.node);
        tracker.add(header); // every entry, selected or not: the structure is checked whole
        if (!unit.value.selected) {
          unit = await units.next();
          continue;
        }
        if (header.type !== 'file') {
          yield { header, body: undefined };
          unit = await units.next();
        } else {
          const body = new PassThrough({ highWaterMark: BODY_HIGH_WATER });
          // A consumer that destroys the body (its own abort) may have stopped listening; the
          // error that matters reaches it through its reads or through this iteration.
          body.on('error', () => {});
          openBody = body;
          const pumped = pumpFile(item, unit.value, units, body, where, progress);
          pumped.catch((err: unknown) => body.destroy(err as Error));
          yield { header, body };
          // The consumer asks for the next entry: what it left of this body is read and checked anyway.
          if (!body.destroyed) body.resume();
          unit = await pumped;
          counts.files += 1;
          counts.rawBytes += header.size;
        }
        counts.entries += 1;
        progress.addEntries(1);
      }
    } catch (err) {
      if (err instanceof SnapworkerError) err.message = withSubject(where, err.message);
      throw err;
    } finally {
      // Stopped early: a pump waiting on a full body must not wait forever.
      openBody?.destroy();
      await units.return(undefined);
    }
    this.result = { ...counts, sealed: false };
  }
}

/** One step of the read: a node, and for a selected file with data one of its chunks (with its data once loaded). */
interface Unit {
  item: WalkedNode;
  selected: boolean;
  chunk?: number;
  data?: Buffer;
}

/** Every node once, and every chunk of each selected file as a unit of its own, in order. */
async function* fileUnits(nodes: AsyncIterable<WalkedNode>, select: ((path: string) => boolean) | undefined): AsyncGenerator<Unit> {
  for await (const item of nodes) {
    const selected = select?.(item.path) ?? true;
    const chunks = item.node.chunks ?? [];
    if (!selected || chunks.length === 0) yield { item, selected };
    else for (let chunk = 0; chunk < chunks.length; chunk++) yield { item, selected, chunk };
  }
}

/**
 * Hands the units back in order, each chunk unit with its data. The chunks are loaded by
 * `BlobStore.loadMany`, which groups the chunks of consecutive files lying close together in one
 * pack into one ranged read (a tree of small files restores in a few large reads, the way
 * restic's restorer reads whole packs) with PACK_READS_AHEAD reads in flight.
 */
async function* loadChunks(store: BlobStore, units: AsyncGenerator<Unit>, signal: AbortSignal): AsyncGenerator<Unit> {
  // Units the chunk ids were taken from, oldest first: loadMany yields in the ids' order.
  const waiting: Unit[] = [];
  async function* chunkIds(): AsyncGenerator<string> {
    for await (const unit of units) {
      waiting.push(unit);
      if (unit.chunk !== undefined) yield unit.item.node.chunks![unit.chunk]!;
    }
  }
  const loaded = store.loadMany(chunkIds(), { signal, concurrency: PACK_READS_AHEAD })[Symbol.asyncIterator]();
  try {
    for (;;) {
      while (waiting.length > 0 && waiting[0]!.chunk === undefined) yield waiting.shift()!;
      const next = await loaded.next();
      while (waiting.length > 0 && waiting[0]!.chunk === undefined) yield waiting.shift()!;
      if (next.done) return;
      yield { ...waiting.shift()!, data: next.value.data };
    }
  } finally {
    await loaded.return?.(undefined);
  }
}

/**
 * Writes one file's chunks into `body` as they arrive (waiting while the consumer is full),
 * checks its size and SHA-256, and ends the body only when both match. Resolves with the unit
 * after the file's last one.
 */
async function pumpFile(
  item: WalkedNode,
  first: Unit,
  units: AsyncGenerator<Unit>,
  body: PassThrough,
  where: string,
  progress: ProgressSink,
): Promise<IteratorResult<Unit>> {
  const node: TreeNode = item.node;
  const name = showPath(item.path);
  const expected = node.sparse ? dataBytes(node.sparse.map(([offset, length]) => ({ offset, length }))) : node.size;
  const hash = contentHash(
    node.sparse?.map(([offset, length]) => ({ offset, length })),
    node.size,
    name,
    (n) => progress.addBytes(n),
  );
  let bytes = 0;
  let unit: IteratorResult<Unit> = { done: false, value: first };
  while (!unit.done && unit.value.item === item) {
    const data = unit.value.data;
    if (data) {
      bytes += data.length;
      if (bytes > expected) throw new IntegrityError(`chunked: entry ${name}: chunks hold more than its ${expected} bytes`);
      await hash.update(data);
      // A body its consumer destroyed is still read to the end: the checks do not depend on it.
      if (!body.destroyed && !body.write(data)) await waitForDrain(body, `entry ${name}`).catch(() => {});
    }
    unit = await units.next();
  }
  if (bytes !== expected) throw new IntegrityError(`chunked: entry ${name}: chunks hold ${bytes} bytes, its tree says ${expected}`);
  const digest = await hash.digest();
  if (digest !== node.sha256) throw new IntegrityError(`chunked: ${where}: entry ${name}: content has SHA-256 ${digest}, its tree says ${node.sha256}`);
  body.end();
  return unit;
}
