import { createRequire } from 'node:module';
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { InvalidInputError, SnapworkerError } from '../../../errors.js';
import { encodeSeekTable, type SeekFrame } from './seek-table.js';

/**
 * Tar bytes per zstd frame. Each frame is compressed on its own, so a reader can start at any
 * frame; smaller frames mean finer seeking but a worse ratio (every frame starts with an empty
 * window). Measured on linux-source-6.1 at level 3 (docs/archive-format.md): 1 MiB frames cost
 * 3.6% in size over one zstd stream, 2 MiB 1.8%, 4 MiB 0.7%, 8 MiB 0.3% (bench/seekable-frames.ts on
 * 300 MB of its tar); 4 MiB keeps the loss under 1%
 * while a one-file read fetches at most a few MiB around the file.
 */
export const FRAME_BYTES = 4 * 1024 * 1024;

/** What the stream wrote, known once it ended. */
export interface FramedOutput {
  frames: SeekFrame[];
  /** The seek table as stored at the end of the object. */
  seekTable: Buffer;
  /** Compressed bytes before the seek table (where it starts). */
  dataBytes: number;
  /** Tar (uncompressed) bytes in. */
  tarBytes: number;
}

export interface FrameCompressOptions {
  /** zstd level (default 3). */
  level: number;
  /** Worker threads compressing frames side by side; 0 compresses on the calling thread. */
  threads: number;
  /** Tar bytes per frame (default FRAME_BYTES; tests use smaller ones). */
  frameBytes?: number;
}

/**
 * Compiled into each worker thread: compresses whole frames (ZSTD_compress2 with a content
 * checksum, like the zstd CLI) and hands them back transferred. Plain JavaScript so it runs the
 * same from the build and under tsx.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const binding = require(workerData.bindingPath);
const cctx = new binding.CCtx();
cctx.setParameter(binding.CParameter.compressionLevel, workerData.level);
cctx.setParameter(binding.CParameter.checksumFlag, 1);
parentPort.on('message', ({ seq, input }) => {
  try {
    const dst = Buffer.allocUnsafeSlow(binding.compressBound(input.byteLength));
    const size = cctx.compress2(dst, input);
    parentPort.postMessage({ seq, data: new Uint8Array(dst.buffer, 0, size), tar: input.byteLength }, [dst.buffer]);
  } catch (err) {
    parentPort.postMessage({ seq, error: String(err && err.message) });
  }
});
`;

interface Binding {
  CCtx: new () => { setParameter(param: number, value: number): void; compress2(dst: Uint8Array, src: Uint8Array): number };
  CParameter: { compressionLevel: number; checksumFlag: number };
  compressBound(size: number): number;
}

let bindingPath: string | undefined;
function zstdBinding(): { path: string; binding: Binding } {
  bindingPath ??= createRequire(import.meta.url).resolve('zstd-napi/binding.js');
  return { path: bindingPath, binding: createRequire(import.meta.url)(bindingPath) as Binding };
}

type Reply = { seq: number; data: Uint8Array; tar: number } | { seq: number; error: string };

/**
 * The first frame buffer of a stream; it doubles as input comes, up to the frame size. A small
 * snapshot's whole tar fits, where a full frame buffer allocated per stream (4 MiB, twice for a
 * one-frame archive) was a good part of a small job's allocation and garbage collection.
 */
const FIRST_BUFFER_BYTES = 64 * 1024;

/**
 * Contexts for frames compressed on the calling thread, one per level, kept for the process:
 * making a context per stream allocated zstd's tables for every small snapshot. Used only
 * synchronously (one `compress2` call at a time), so concurrent streams can share one.
 */
const inlineContexts = new Map<number, { cctx: InstanceType<Binding['CCtx']>; binding: Binding }>();

/**
 * Compresses a tar stream into independent zstd frames of `frameBytes` tar bytes each, followed by
 * the seek table (seek-table.ts): the zstd seekable format. A stock `zstd -d` reads the result as
 * any multi-frame zstd file.
 *
 * With threads, frames are compressed side by side, one per thread, and written out in order;
 * memory is bounded by about 2 × threads frames in flight plus their compressed copies. Without,
 * each frame is compressed on the calling thread when it fills (fine for small snapshots, where
 * starting threads costs more than it saves).
 */
export class SeekableZstdCompressStream extends Transform {
  private readonly frameBytes: number;
  private readonly frames: SeekFrame[] = [];
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly ready = new Map<number, { data: Uint8Array; tar: number }>();
  /** Frames filled while every thread was busy (at most one: input waits while one is here). */
  private readonly pending: { seq: number; input: Buffer }[] = [];
  private frame: Buffer;
  private used = 0;
  private nextSeq = 0;
  private nextOut = 0;
  private heldWrite: TransformCallback | undefined;
  private flushDone: TransformCallback | undefined;
  private inline: { cctx: InstanceType<Binding['CCtx']>; binding: Binding } | undefined;
  private output: FramedOutput | undefined;
  private dataBytes = 0;
  private tarBytes = 0;

  constructor(private readonly options: FrameCompressOptions) {
    super({ readableHighWaterMark: 1024 * 1024 });
    if (!Number.isInteger(options.level) || options.level < -131072 || options.level > 22) throw new InvalidInputError(`archive: zstd level ${options.level} is not an integer from -131072 to 22`);
    this.frameBytes = options.frameBytes ?? FRAME_BYTES;
    this.frame = Buffer.allocUnsafeSlow(Math.min(FIRST_BUFFER_BYTES, this.frameBytes));
  }

  /** The frames and seek table written; undefined until the stream ended. */
  get result(): FramedOutput | undefined {
    return this.output;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      let at = 0;
      while (at < chunk.length) {
        if (this.used === this.frame.length) this.growFrame();
        const n = Math.min(chunk.length - at, this.frame.length - this.used);
        chunk.copy(this.frame, this.used, at, at + n);
        this.used += n;
        at += n;
        if (this.used === this.frameBytes) this.dispatch();
      }
    } catch (err) {
      return done(err as Error);
    }
    this.heldWrite = done;
    this.releaseWrite();
  }

  override _flush(done: TransformCallback): void {
    try {
      if (this.used > 0) this.dispatch();
    } catch (err) {
      return done(err as Error);
    }
    this.flushDone = done;
    this.finishIfDone();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    for (const worker of this.workers) void worker.terminate();
    callback(error);
  }

  /** A frame buffer twice as large (at most a frame), holding what the current one holds. */
  private growFrame(): void {
    const larger = Buffer.allocUnsafeSlow(Math.min(this.frame.length * 2, this.frameBytes));
    this.frame.copy(larger, 0, 0, this.used);
    this.frame = larger;
  }

  /** Hands the filled frame to a thread (or compresses it here) and starts a new one. */
  private dispatch(): void {
    const input = this.frame.subarray(0, this.used);
    const seq = this.nextSeq++;
    this.used = 0;
    if (this.options.threads <= 0) {
      // Compressed before this returns: the same buffer takes the next frame.
      this.inline ??= inlineContext(this.options.level);
      const { cctx, binding } = this.inline;
      const dst = Buffer.allocUnsafeSlow(binding.compressBound(input.length));
      const size = cctx.compress2(dst, input);
      this.onReply({ seq, data: dst.subarray(0, size), tar: input.length });
      return;
    }
    // The filled buffer moves to a thread: a new one, a whole frame (this is a large snapshot).
    this.frame = Buffer.allocUnsafeSlow(this.frameBytes);
    const worker = this.idle.pop() ?? (this.workers.length < this.options.threads ? this.startWorker() : undefined);
    if (worker) post(worker, seq, input);
    else this.pending.push({ seq, input });
  }

  private startWorker(): Worker {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bindingPath: zstdBinding().path, level: this.options.level } });
    worker.on('message', (reply: Reply) => {
      const queued = this.pending.shift();
      if (queued) post(worker, queued.seq, queued.input);
      else this.idle.push(worker);
      this.onReply(reply);
    });
    worker.on('error', (err) => this.destroy(new SnapworkerError(`archive: zstd compression thread failed: ${err.message}`, { cause: err })));
    this.workers.push(worker);
    return worker;
  }

  private onReply(reply: Reply): void {
    if (this.destroyed) return;
    if ('error' in reply) {
      this.destroy(new SnapworkerError(`archive: zstd compression failed: ${reply.error}`));
      return;
    }
    this.ready.set(reply.seq, reply);
    // Frames go out in order, whichever thread finished first.
    for (let next = this.ready.get(this.nextOut); next; next = this.ready.get(this.nextOut)) {
      this.ready.delete(this.nextOut);
      this.nextOut += 1;
      this.frames.push({ compressedSize: next.data.length, decompressedSize: next.tar });
      this.dataBytes += next.data.length;
      this.tarBytes += next.tar;
      this.push(Buffer.from(next.data.buffer, next.data.byteOffset, next.data.length));
    }
    this.releaseWrite();
    this.finishIfDone();
  }

  /** Takes more input unless a filled frame still waits for a thread. */
  private releaseWrite(): void {
    if (!this.heldWrite || this.pending.length > 0) return;
    const done = this.heldWrite;
    this.heldWrite = undefined;
    done();
  }

  private finishIfDone(): void {
    if (!this.flushDone || this.nextOut < this.nextSeq) return;
    const seekTable = encodeSeekTable(this.frames);
    this.output = { frames: this.frames, seekTable, dataBytes: this.dataBytes, tarBytes: this.tarBytes };
    this.push(seekTable);
    for (const worker of this.workers) void worker.terminate();
    const done = this.flushDone;
    this.flushDone = undefined;
    done();
  }
}

/** The process's context for `level` (see `inlineContexts`). */
function inlineContext(level: number): { cctx: InstanceType<Binding['CCtx']>; binding: Binding } {
  let context = inlineContexts.get(level);
  if (!context) {
    const { binding } = zstdBinding();
    const cctx = new binding.CCtx();
    cctx.setParameter(binding.CParameter.compressionLevel, level);
    cctx.setParameter(binding.CParameter.checksumFlag, 1);
    inlineContexts.set(level, (context = { cctx, binding }));
  }
  return context;
}

function post(worker: Worker, seq: number, input: Buffer): void {
  // allocUnsafeSlow gave the frame its own ArrayBuffer: transferring it moves no bytes.
  worker.postMessage({ seq, input }, [input.buffer as ArrayBuffer]);
}
