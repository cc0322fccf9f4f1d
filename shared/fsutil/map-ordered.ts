/**
 * Applies `fn` to `items` with up to `concurrency` calls in flight and yields the results in the
 * items' order. Memory holds at most `concurrency` pending results. When the consumer stops early
 * the calls already started run to completion and their results (or errors) are dropped.
 */
export async function* mapOrdered<T, R>(
  items: Iterable<T>,
  concurrency: number,
  fn: (item: T) => Promise<R>,
): AsyncGenerator<R> {
  const window: Promise<R>[] = [];
  const iterator = items[Symbol.iterator]();
  const fill = (): void => {
    while (window.length < concurrency) {
      const next = iterator.next();
      if (next.done) return;
      const pending = fn(next.value);
      // Awaited in order below; until then a rejection must not count as unhandled.
      pending.catch(() => {});
      window.push(pending);
    }
  };
  fill();
  while (window.length > 0) {
    const result = await window.shift()!;
    fill();
    yield result;
  }
}
