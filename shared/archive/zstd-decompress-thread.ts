import { createRequire } from 'node:module';
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { IntegrityError } from '../errors.js';

/** Input chunks handed to the thread and not yet decompressed; bounds what the thread holds. */
const INPUT_WINDOW = 8;
/** Output chunk size: fewer messages and fewer downstream chunks. */
const OUTPUT_CHUNK_BYTES = 1024 * 1024;

/**
 * The decompression loop, run in a worker thread. Plain JavaScript
 * evaluated as the worker's script, so it runs the same from the compiled build and under tsx.
 * Messages out: `{ data }` (a full output chunk, transferred), `{ consumed }` per input chunk,
 * `{ error, trailing }`, and `{ flushed, truncated }` after the last output.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const binding = require(workerData.bindingPath);
const CHUNK = workerData.chunkBytes;
const dctx = new binding.DCtx();
let out = Buffer.allocUnsafe(CHUNK);
let used = 0;
let frameEnded = false;
let sawInput = false;
let failed = false;
function emit() {
  if (used === 0) return;
  const full = new Uint8Array(out.buffer, out.byteOffset, used);
  parentPort.postMessage({ data: full }, [out.buffer]);
  out = Buffer.allocUnsafe(CHUNK);
  used = 0;
}
function fail(message, trailing) {
  failed = true;
  parentPort.postMessage({ error: message, trailing });
}
function decompress(input) {
  if (input.length === 0) return;
  if (frameEnded) return fail('data after the end of the zstd frame', true);
  sawInput = true;
  let src = input;
  for (;;) {
    const dst = out.subarray(used);
    const [remaining, produced, consumed] = dctx.decompressStream(dst, src);
    src = src.subarray(consumed);
    used += produced;
    if (used === CHUNK) emit();
    if (remaining === 0) {
      frameEnded = true;
      if (src.length > 0) return fail('data after the end of the zstd frame', true);
      return;
    }
    if (src.length === 0 && produced < dst.length) return;
  }
}
parentPort.on('message', (message) => {
  if (failed) return;
  if (message.end) {
    emit();
    parentPort.postMessage({ flushed: true, truncated: sawInput && !frameEnded });
    return;
  }
  try {
    decompress(Buffer.from(message.input.buffer, message.input.byteOffset, message.input.byteLength));
  } catch (err) {
    return fail('corrupt zstd data: ' + err.message, false);
  }
  if (!failed) parentPort.postMessage({ consumed: true });
});
`;

type WorkerMessage =
  | { data: Uint8Array }
  | { consumed: true }
  | { error: string; trailing: boolean }
  | { flushed: true; truncated: boolean };

let bindingPath: string | undefined;

/**
 * Decompresses exactly one zstd frame in a worker thread: anything after the frame fails the
 * stream with an IntegrityError; input that ends inside the frame ends the output and sets
 * `truncated`. Moving the decompression off
 * the event-loop thread lets a restore decompress on one core while the other hashes, parses
 * and writes files: in a restore of many small files the event loop is the bottleneck.
 *
 * Memory: at most `INPUT_WINDOW` input chunks in the thread, one partial output chunk there, and
 * the readable buffer; input is only taken while the reader keeps up (readable backpressure).
 */
export class ThreadedZstdDecompressStream extends Transform {
  private readonly worker: Worker;
  private inFlight = 0;
  /** The write callback held back while the window is full or the reader is behind. */
  private heldWrite: TransformCallback | undefined;
  private flushDone: TransformCallback | undefined;
  /** True once the input has ended before the frame did. */
  truncated = false;

  constructor() {
    super({ readableHighWaterMark: 2 * OUTPUT_CHUNK_BYTES });
    bindingPath ??= createRequire(import.meta.url).resolve('zstd-napi/binding.js');
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bindingPath, chunkBytes: OUTPUT_CHUNK_BYTES } });
    this.worker.on('message', (message: WorkerMessage) => this.onMessage(message));
    this.worker.on('error', (err) => this.destroy(new IntegrityError(`archive: zstd decompression thread failed: ${err.message}`, { cause: err })));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (chunk.length === 0) return done();
    this.inFlight += 1;
    // Copied by the structured clone: input chunks may be slices of a shared pool.
    this.worker.postMessage({ input: chunk });
    this.heldWrite = done;
    this.releaseWrite();
  }

  override _read(size: number): void {
    this.releaseWrite();
    super._read(size);
  }

  override _flush(done: TransformCallback): void {
    this.flushDone = done;
    this.worker.postMessage({ end: true });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    void this.worker.terminate();
    callback(error);
  }

  private onMessage(message: WorkerMessage): void {
    if (this.destroyed) return;
    if ('data' in message) {
      this.push(Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength));
    } else if ('consumed' in message) {
      this.inFlight -= 1;
      this.releaseWrite();
    } else if ('error' in message) {
      this.destroy(new IntegrityError(`archive: ${message.error}`));
    } else {
      this.truncated = message.truncated;
      void this.worker.terminate();
      const done = this.flushDone;
      this.flushDone = undefined;
      done?.();
    }
  }

  /** Takes the next input chunk once there is room in the thread and the reader keeps up. */
  private releaseWrite(): void {
    if (!this.heldWrite || this.inFlight >= INPUT_WINDOW || this.readableLength >= this.readableHighWaterMark) return;
    const done = this.heldWrite;
    this.heldWrite = undefined;
    done();
  }
}
