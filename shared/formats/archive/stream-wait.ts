import type { EventEmitter } from 'node:events';

/** What both Node streams and streamx (tar-stream) streams offer for waiting on backpressure. */
interface DrainableStream extends Pick<EventEmitter, 'once' | 'off'> {
  readonly destroyed: boolean;
}

/**
 * Resolves on the stream's next `drain`; rejects when it errors or closes first, so a writer
 * waiting on a stream that a failure elsewhere destroyed never hangs.
 */
export function waitForDrain(stream: DrainableStream, name: string): Promise<void> {
  if (stream.destroyed) return Promise.reject(new Error(`${name} closed`));
  return new Promise<void>((resolve, reject) => {
    const cleanup = () => {
      stream.off('drain', onDrain);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onError = (err: unknown) => {
      cleanup();
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    const onClose = () => {
      cleanup();
      reject(new Error(`${name} closed`));
    };
    stream.once('drain', onDrain);
    stream.once('error', onError);
    stream.once('close', onClose);
  });
}

/**
 * Counts bytes moved by a loop and, every `everyBytes`, lets the event loop run timers and I/O.
 * A pipeline fed from memory (a read-ahead buffer, a fast decompressor) otherwise runs on
 * promise callbacks alone and starves timers: abort timeouts, lock renewals, progress publishing.
 */
export class EventLoopYielder {
  private sinceYield = 0;

  constructor(private readonly everyBytes = 8 * 1024 * 1024) {}

  /** Resolves at once, or after a setImmediate turn when enough bytes went by. */
  async add(bytes: number): Promise<void> {
    this.sinceYield += bytes;
    if (this.sinceYield < this.everyBytes) return;
    this.sinceYield = 0;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
