import { throwIfAborted } from '../errors.js';

export interface ReadAheadOptions<T, R> {
  /** Most items loaded or loading ahead of the consumer. */
  maxItems: number;
  /** Most bytes (as weighed) loaded or loading ahead; one item heavier than this still goes alone. */
  maxBytes: number;
  /** The bytes an item will hold in memory once loaded (0 for items loaded lazily). */
  weigh(item: T): number;
  /** Starts loading an item; runs concurrently with the loads of the items around it. */
  load(item: T): Promise<R>;
  signal?: AbortSignal;
}

/**
 * Pulls items from `source` in the background and starts loading them ahead of the consumer,
 * bounded by `maxItems` and `maxBytes`, and yields the loaded results in source order. This turns
 * a chain of small, latency-bound reads into overlapping ones while memory stays bounded by the
 * two limits whatever the size of the source.
 *
 * The first error (from the source, a load, or the signal) ends the iteration; loads already
 * started finish in the background and their results are dropped.
 */
export async function* readAhead<T, R>(source: AsyncIterable<T>, options: ReadAheadOptions<T, R>): AsyncGenerator<R> {
  const { maxItems, maxBytes, weigh, load, signal } = options;
  const queue: { result: Promise<R>; bytes: number }[] = [];
  let queuedBytes = 0;
  let sourceDone = false;
  let stopped = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  // Only ever one side waits at a time: the pump for room, or the consumer for an item.
  const nextChange = (): Promise<void> => new Promise((resolve) => (wake = resolve));

  const pump = async (): Promise<void> => {
    const iterator = source[Symbol.asyncIterator]();
    let exhausted = false;
    try {
      for (;;) {
        throwIfAborted(signal);
        const next = await iterator.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        if (stopped) break;
        const bytes = weigh(next.value);
        while (!stopped && queue.length > 0 && (queue.length >= maxItems || queuedBytes + bytes > maxBytes)) {
          await nextChange();
        }
        if (stopped) break;
        const result = load(next.value);
        result.catch(() => {});
        queue.push({ result, bytes });
        queuedBytes += bytes;
        notify();
      }
    } catch (error) {
      failure = { error };
    } finally {
      sourceDone = true;
      notify();
      if (!exhausted) await iterator.return?.().catch(() => {});
    }
  };

  const pumping = pump();
  try {
    for (;;) {
      throwIfAborted(signal);
      const head = queue[0];
      if (head === undefined) {
        if (failure) throw failure.error;
        if (sourceDone) return;
        await nextChange();
        continue;
      }
      const value = await head.result;
      yield value;
      // The consumer asked for the next item, so it is done with this one: free its room.
      queue.shift();
      queuedBytes -= head.bytes;
      notify();
    }
  } finally {
    stopped = true;
    notify();
    await pumping;
  }
}
