import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { AbortedError, IntegrityError } from '../../errors.js';
import { entryWithBytes, type SnapshotEntry } from '../snapshot-format.js';
import { readArchive, type ReadArchiveOptions, type ReadResult } from './archive-reader.js';
import type { Manifest } from './manifest.js';

/** An archive being read as an iterator of entries (see `openArchiveEntries`). */
export interface ArchiveEntries extends AsyncIterableIterator<SnapshotEntry> {
  /** The checked manifest. */
  readonly manifest: Manifest;
  /** The counts, once the iteration ended normally. */
  readonly result: ReadResult | undefined;
  /** Stops reading and waits until every stream and the decompression thread are gone. Idempotent. */
  close(): Promise<void>;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // a hand-off nobody waits for any more must not be an unhandled rejection
  return { promise, resolve, reject };
}

/** An entry the reader handed over, and what lets the reader go on to the next one. */
interface HandedEntry {
  entry: SnapshotEntry;
  /** The reader's stream of the body, when it streams one (not for bytes in hand). */
  stream: Readable | undefined;
  release: Deferred<void>;
}

/** Files up to this size come as `bytes` (see `SnapshotEntry.bytes`): no stream per small file. */
const BYTES_UP_TO = 256 * 1024;

/**
 * Reads an archive (`readArchive`, every check included) as a pull iterator: resolves once the
 * manifest is read and checked, then yields one entry per `next()`. The reader waits while an
 * entry is out: the tar parser, the decompression and the download stop with it (backpressure
 * through the whole chain, memory bounded by one body's buffer). Asking for the next entry drains
 * what the consumer left of the previous body.
 *
 * The iteration ends normally only when the whole archive verified (the sums come last);
 * integrity failures are thrown from `next()`. Ending early (`return()`, which `for await` calls
 * on break or throw, or `close()`) aborts the read and resolves once the input, the tar parser and
 * the zstd thread are destroyed.
 *
 * @throws what `readArchive` throws before or at the manifest (the promise rejects).
 */
export async function openArchiveEntries(input: Readable, options: Omit<ReadArchiveOptions, 'onManifest' | 'onEntry'>): Promise<ArchiveEntries> {
  const stop = new AbortController();
  const manifestRead = deferred<Manifest>();
  let offered: HandedEntry | undefined;
  let current: HandedEntry | undefined;
  /** Settled when an entry is offered or the read ended; replaced after each entry taken. */
  let wake = deferred<void>();
  let ended = false;
  let closed = false;
  let result: ReadResult | undefined;
  let failure: unknown;

  const reading = readArchive(input, {
    ...options,
    signal: AbortSignal.any([options.signal, stop.signal]),
    onManifest: (manifest) => manifestRead.resolve(manifest),
    bytesUpTo: BYTES_UP_TO,
    onEntry: async (header, body, bytes) => {
      const release = deferred<void>();
      offered = { entry: bytes ? entryWithBytes(header, bytes) : { header, body }, stream: body, release };
      wake.resolve();
      await release.promise;
    },
  }).then(
    (value) => void (result = value),
    (err: unknown) => void (failure = err),
  );
  void reading.finally(() => {
    ended = true;
    wake.resolve();
    manifestRead.reject(failure ?? new IntegrityError('archive: ended before its manifest'));
  });

  const close = async (): Promise<void> => {
    if (!closed) {
      closed = true;
      if (!ended) stop.abort(new AbortedError('archive: reading stopped by its consumer'));
      for (const handed of [current, offered]) {
        handed?.stream?.destroy();
        handed?.release.reject(new AbortedError('archive: reading stopped by its consumer'));
      }
      current = offered = undefined;
    }
    await reading;
  };

  let manifest: Manifest;
  try {
    manifest = await manifestRead.promise;
  } catch (err) {
    await close();
    throw err;
  }

  const entries: ArchiveEntries = {
    manifest,
    get result() {
      return result;
    },
    close,
    async next(): Promise<IteratorResult<SnapshotEntry>> {
      if (closed) return { done: true, value: undefined };
      if (current) {
        const body = current.stream;
        if (body && !body.readableEnded && !body.destroyed) {
          body.resume();
          await finished(body).catch(() => {}); // a body error is the reader's failure, thrown below
        }
        current.release.resolve();
        current = undefined;
      }
      while (!offered && !ended) await wake.promise;
      if (offered) {
        current = offered;
        offered = undefined;
        wake = deferred();
        return { done: false, value: current.entry };
      }
      await reading;
      closed = true;
      if (failure !== undefined) throw failure;
      return { done: true, value: undefined };
    },
    async return(): Promise<IteratorResult<SnapshotEntry>> {
      await close();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return entries;
}
