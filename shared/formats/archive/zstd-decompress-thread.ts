import { createRequire } from 'node:module';
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { IntegrityError } from '../../errors.js';

/** Input chunks handed to the thread and not yet decompressed; bounds what the thread holds. */
const INPUT_WINDOW = 8;
/** Output chunk size: fewer messages and fewer downstream chunks. */
const OUTPUT_CHUNK_BYTES = 1024 * 1024;
/** Output chunks asked of the thread ahead of the reader, so it decompresses while the reader works. */
const OUTPUT_AHEAD = 2;

/**
 * The decompression loop, run in a worker thread. Plain JavaScript evaluated as the worker's
 * script, so it runs the same from the compiled build and under tsx.
 *
 * Output is pulled: the thread fills an output chunk only while it is owed one (`{ want: n }`),
 * and stops in the middle of an input chunk otherwise. zstd turns a few bytes into up to
 * 128 KiB (one RLE block), so one 64 KiB input chunk of zeros is gigabytes of output: only a
 * pull keeps memory bounded whatever the compression ratio.
 * Messages in: `{ input }`, `{ want }`, `{ end }`. Messages out: `{ data }` (one output chunk,
 * transferred; one per want, the last one may be short), `{ consumed }` per input chunk used up,
 * `{ error, trailing }`, and `{ flushed, truncated }` after the last output.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const binding = require(workerData.bindingPath);
const CHUNK = workerData.chunkBytes;
const ZSTD_MAGIC = 0xfd2fb528;
const SEEK_TABLE_MAGIC = 0x184d2a5e;
const SEEKABLE_MAGIC = 0x8f92eab1;
const dctx = new binding.DCtx();
const inputs = [];
let src = null;
let out = Buffer.allocUnsafe(CHUNK);
let used = 0;
let wanted = 0;
let ending = false;
// 'boundary' before a frame, 'frame' inside a data frame, 'table' inside the seek table, 'done' after it.
let state = 'boundary';
const frames = [];
let frameIn = 0;
let frameOut = 0;
let table = null;
let tableUsed = 0;
let sawInput = false;
let failed = false;
function emit() {
  const full = new Uint8Array(out.buffer, out.byteOffset, used);
  parentPort.postMessage({ data: full }, [out.buffer]);
  out = Buffer.allocUnsafe(CHUNK);
  used = 0;
  wanted -= 1;
}
function fail(message, trailing) {
  failed = true;
  parentPort.postMessage({ error: message, trailing });
}
function nextInput() {
  while (src === null || src.length === 0) {
    if (src !== null) {
      src = null;
      parentPort.postMessage({ consumed: true });
    }
    if (inputs.length === 0) return false;
    src = inputs.shift();
    if (src.length > 0) sawInput = true;
  }
  return true;
}
// At a frame boundary: at least 8 bytes in src (or all there is, once the input ended).
function gatherHead() {
  while (src.length < 8 && inputs.length > 0) {
    const more = inputs.shift();
    src = Buffer.concat([src, more]);
    parentPort.postMessage({ consumed: true });
  }
  return src.length >= 8 || ending;
}
// The seek table (zstd seekable format) must list exactly the frames read.
function checkTable() {
  const footer = table.length - 9;
  if (footer < 0 || table.readUInt32LE(footer + 5) !== SEEKABLE_MAGIC) return 'the skippable frame after the data is not a seek table';
  const descriptor = table[footer + 4];
  const entryBytes = descriptor & 0x80 ? 12 : 8;
  const count = table.readUInt32LE(footer);
  if ((descriptor & 0x7c) !== 0 || count * entryBytes !== footer || count !== frames.length) return 'the seek table does not list the frames';
  for (let i = 0; i < count; i++) {
    if (table.readUInt32LE(i * entryBytes) !== frames[i][0] || table.readUInt32LE(i * entryBytes + 4) !== frames[i][1]) return 'the seek table does not match frame ' + i;
  }
  return null;
}
function atBoundary() {
  if (!gatherHead()) return false;
  if (state === 'done') return fail('data after the end of the zstd frame', true), false;
  if (src.length < 4) return fail('data after the end of the zstd frame', true), false;
  const magic = src.readUInt32LE(0);
  if (magic === ZSTD_MAGIC) {
    state = 'frame';
    frameIn = frameOut = 0;
    return true;
  }
  if (magic === SEEK_TABLE_MAGIC && frames.length > 0 && src.length >= 8) {
    const size = src.readUInt32LE(4);
    if (size > frames.length * 12 + 9) return fail('the seek table is larger than its frames need', true), false;
    table = Buffer.alloc(size);
    tableUsed = 0;
    src = src.subarray(8);
    state = 'table';
    return true;
  }
  return fail('data after the end of the zstd frame', true), false;
}
function pump() {
  while (!failed && wanted > 0) {
    if (!nextInput()) {
      if (failed || !ending) return;
      if (used > 0) emit();
      // Several frames are ours only with a seek table that lists them.
      if (state === 'boundary' && frames.length > 1) return fail('data after the end of the zstd frame', true);
      parentPort.postMessage({ flushed: true, truncated: sawInput && (state === 'frame' || state === 'table' || frames.length === 0) });
      failed = true; // nothing more to do
      return;
    }
    if (state === 'boundary' || state === 'done') {
      if (!atBoundary()) return;
      continue;
    }
    if (state === 'table') {
      const n = Math.min(src.length, table.length - tableUsed);
      src.copy(table, tableUsed, 0, n);
      tableUsed += n;
      src = src.subarray(n);
      if (tableUsed === table.length) {
        const problem = checkTable();
        if (problem) return fail(problem, false);
        state = 'done';
      }
      continue;
    }
    const [remaining, produced, consumed] = dctx.decompressStream(out.subarray(used), src);
    src = src.subarray(consumed);
    used += produced;
    frameIn += consumed;
    frameOut += produced;
    if (remaining === 0) {
      frames.push([frameIn, frameOut]);
      state = 'boundary';
    }
    if (used === CHUNK) emit();
  }
}
parentPort.on('message', (message) => {
  if (failed) return;
  if (message.end) ending = true;
  else if (message.want) wanted += message.want;
  else inputs.push(Buffer.from(message.input.buffer, message.input.byteOffset, message.input.byteLength));
  try {
    pump();
  } catch (err) {
    fail('corrupt zstd data: ' + err.message, false);
  }
});
`;

type WorkerMessage =
  | { data: Uint8Array }
  | { consumed: true }
  | { error: string; trailing: boolean }
  | { flushed: true; truncated: boolean };

let bindingPath: string | undefined;

/**
 * Decompresses an archive's zstd stream in a worker thread: one frame (archives written before
 * seekable frames), or data frames followed by the seek table of the zstd seekable format that
 * lists exactly them (seekable/seek-table.ts). Anything else after the frames (garbage, frames
 * no seek table lists, data after the table) fails the stream with an IntegrityError; input that
 * ends inside a frame ends the output and sets `truncated`. Moving the decompression off the event-loop thread lets a restore decompress on
 * one core while the other hashes, parses and writes files: in a restore of many small files
 * the event loop is the bottleneck.
 *
 * Memory, whatever the compression ratio: at most `INPUT_WINDOW` input chunks and one output
 * chunk in the thread, `OUTPUT_AHEAD` output chunks on their way, and the readable buffer. The
 * thread produces output only when the reader asks for it (`_read`), and takes input only as
 * it uses it up, so a slow reader holds back the writer.
 */
/**
 * The compressed bytes do not decode (a flipped byte, a checksum that does not match). The
 * archive reader adds where in the archive it happened (`in entry data/b.txt`), which only it knows.
 */
export class CorruptDataError extends IntegrityError {
  constructor(readonly detail: string) {
    super(`archive: corrupt zstd data: ${detail}`);
    this.name = 'CorruptDataError';
  }
}

export class ThreadedZstdDecompressStream extends Transform {
  private readonly worker: Worker;
  /** Input chunks posted to the thread and not yet used up. */
  private inFlight = 0;
  /** Output chunks asked of the thread and not yet received. */
  private owed = 0;
  /** The write callback held back while the thread's input window is full. */
  private heldWrite: TransformCallback | undefined;
  private flushDone: TransformCallback | undefined;
  /** True once the input has ended before the frame did. */
  truncated = false;

  constructor() {
    super({ readableHighWaterMark: OUTPUT_CHUNK_BYTES });
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

  /**
   * The reader wants more. Node calls this again only after a push, so it must lead to one:
   * output is owed from here on until the thread delivers it.
   */
  override _read(size: number): void {
    if (this.owed < OUTPUT_AHEAD) {
      this.worker.postMessage({ want: OUTPUT_AHEAD - this.owed });
      this.owed = OUTPUT_AHEAD;
    }
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
      this.owed -= 1;
      this.push(Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength));
    } else if ('consumed' in message) {
      this.inFlight -= 1;
      this.releaseWrite();
    } else if ('error' in message) {
      const corrupt = /^corrupt zstd data: /.exec(message.error);
      this.destroy(corrupt ? new CorruptDataError(message.error.slice(corrupt[0].length)) : new IntegrityError(`archive: ${message.error}`));
    } else {
      this.truncated = message.truncated;
      void this.worker.terminate();
      const done = this.flushDone;
      this.flushDone = undefined;
      done?.();
    }
  }

  /** Takes the next input chunk once the thread has room for it. */
  private releaseWrite(): void {
    if (!this.heldWrite || this.inFlight >= INPUT_WINDOW) return;
    const done = this.heldWrite;
    this.heldWrite = undefined;
    done();
  }
}
