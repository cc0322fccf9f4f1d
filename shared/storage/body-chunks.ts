import type { Readable } from 'node:stream';

import { AbortedError } from '../errors.js';

/**
 * The chunks of an upload body as Buffers, ending with `AbortedError` as soon as `signal` fires,
 * even when the producer never yields again (destroying a `Readable.from` stream waits for its
 * generator, which may wait forever). The body is destroyed when iteration stops early.
 */
export async function* bodyChunks(body: Readable, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const iterator = (body as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new AbortedError('aborted', { cause: signal?.reason }));
  });
  aborted.catch(() => {}); // only ever observed through the race below
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });
  let finished = false;
  try {
    for (;;) {
      const result = await (signal ? Promise.race([iterator.next(), aborted]) : iterator.next());
      if (result.done) {
        finished = true;
        return;
      }
      yield typeof result.value === 'string' ? Buffer.from(result.value) : result.value;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (!finished) body.destroy();
  }
}
