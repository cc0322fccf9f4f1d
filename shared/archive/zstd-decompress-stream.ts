import { Transform, type TransformCallback } from 'node:stream';
import binding from 'zstd-napi/binding.js';
import { IntegrityError } from '../errors.js';

// 1 MiB outputs instead of zstd's 128 KiB suggestion: fewer native calls, allocations and
// downstream chunks (measured about 7% faster); memory stays one chunk per stream buffer.
const OUTPUT_CHUNK_BYTES = 1024 * 1024;

/**
 * Decompresses exactly one zstd frame, strictly: any byte after the end of the frame (another
 * frame, a skippable frame, garbage) fails the stream with an IntegrityError, since an archive
 * must end where its writer ended it. Unlike zstd-napi's DecompressStream, input that ends
 * inside the frame does not fail the stream: the output simply ends and `truncated` turns true,
 * so the tar reader behind it can name the entry the archive was cut in.
 */
export class ZstdDecompressStream extends Transform {
  private readonly dctx = new binding.DCtx();
  private frameEnded = false;
  private sawInput = false;
  /** True once the input has ended before the frame did. */
  truncated = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      this.decompress(chunk);
      done();
    } catch (err) {
      done(err instanceof IntegrityError ? err : new IntegrityError(`archive: corrupt zstd data: ${(err as Error).message}`, { cause: err }));
    }
  }

  override _flush(done: TransformCallback): void {
    this.truncated = this.sawInput && !this.frameEnded;
    done();
  }

  private decompress(input: Buffer): void {
    if (input.length === 0) return;
    if (this.frameEnded) throw new IntegrityError('archive: data after the end of the zstd frame');
    this.sawInput = true;
    let src = input;
    let dst = Buffer.allocUnsafe(OUTPUT_CHUNK_BYTES);
    for (;;) {
      const [remaining, produced, consumed] = this.dctx.decompressStream(dst, src);
      src = src.subarray(consumed);
      if (produced > 0) {
        this.push(dst.subarray(0, produced));
        dst = Buffer.allocUnsafe(OUTPUT_CHUNK_BYTES);
      }
      if (remaining === 0) {
        this.frameEnded = true;
        if (src.length > 0) throw new IntegrityError('archive: data after the end of the zstd frame');
        return;
      }
      // A full output buffer may hide more output for the same input; otherwise wait for input.
      if (src.length === 0 && produced < OUTPUT_CHUNK_BYTES) return;
    }
  }
}
