/** Progress of a chunked transfer, in the terms of jsm.go's snapshot and restore progress. */
export interface TransferProgress {
  chunks: number;
  bytes: number;
  /** What the stream state promises (its message bytes); the snapshot itself is compressed. */
  bytesExpected: number | undefined;
  /** Average since the transfer started. */
  bytesPerSecond: number;
  startedAt: Date;
}

/** Counts chunks and bytes of one transfer. */
export class TransferMeter {
  private chunks = 0;
  private bytes = 0;
  private readonly startedAt = new Date();

  constructor(private readonly bytesExpected: number | undefined) {}

  add(bytes: number): void {
    this.chunks += 1;
    this.bytes += bytes;
  }

  progress(): TransferProgress {
    const seconds = (Date.now() - this.startedAt.getTime()) / 1000;
    return {
      chunks: this.chunks,
      bytes: this.bytes,
      bytesExpected: this.bytesExpected,
      bytesPerSecond: seconds > 0 ? Math.round(this.bytes / seconds) : 0,
      startedAt: this.startedAt,
    };
  }
}
