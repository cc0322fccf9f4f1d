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
