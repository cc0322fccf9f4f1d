import type { Readable } from 'node:stream';

import { AbortedError } from '../errors.js';

/**
 * The chunks of an upload body as Buffers, ending with `AbortedError` as soon as `signal` fires,
 * even when the producer never yields again (destroying a `Readable.from` stream waits for its
 * generator, which may wait forever). The body is destroyed when iteration stops early.
 */
export async function* bodyChunks(body: Readable, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const iterator = (body as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      const result = signal ? await untilAborted(iterator.next(), signal) : await iterator.next();
      if (result.done) {
        finished = true;
        return;
      }
      yield typeof result.value === 'string' ? Buffer.from(result.value) : result.value;
    }
  } finally {
    if (!finished) body.destroy();
  }
}

/**
 * `pending`, or `AbortedError` when `signal` fires first. A fresh listener per call, removed once
 * settled: racing every read against one long-lived promise (`Promise.race`) would keep every chunk
 * ever read reachable from that promise until the upload ends.
 */
function untilAborted<T>(pending: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError('aborted', { cause: signal.reason }));
    if (signal.aborted) {
      // The read still settles (often with the same failure): observe it, or it would surface
      // as an unhandled rejection and take the process down.
      pending.catch(() => {});
      return onAbort();
    }
    signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
