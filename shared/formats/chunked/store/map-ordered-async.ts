/**
 * Like `mapOrdered` (shared/fsutil/map-ordered.ts) over an async source: up to `concurrency`
 * calls of `fn` in flight, results yielded in the items' order. When the consumer stops early,
 * calls already started finish and their results are dropped.
 */
export async function* mapOrderedAsync<T, R>(items: AsyncIterable<T> | Iterable<T>, concurrency: number, fn: (item: T) => Promise<R>): AsyncGenerator<R> {
  const window: Promise<R>[] = [];
  const iterator = (Symbol.asyncIterator in items ? (items as AsyncIterable<T>)[Symbol.asyncIterator]() : (items as Iterable<T>)[Symbol.iterator]()) as AsyncIterator<T> | Iterator<T>;
  let done = false;
  const fill = async (): Promise<void> => {
    while (!done && window.length < concurrency) {
      const next = await iterator.next();
      if (next.done) {
        done = true;
        return;
      }
      const pending = fn(next.value);
      pending.catch(() => {}); // awaited in order below
      window.push(pending);
    }
  };
  try {
    await fill();
    while (window.length > 0) {
      const result = await window.shift()!;
      await fill();
      yield result;
    }
  } finally {
    if (!done) await iterator.return?.();
  }
}
