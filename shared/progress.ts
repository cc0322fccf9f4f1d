import type { Phase, ProgressReport } from '../jobs/progress-report.js';

// Published with the job contract (producers follow progress); defined there.
export type { Phase, ProgressReport } from '../jobs/progress-report.js';

/**
 * Where pipeline stages report what they did. Calls are cheap (counters only); publishing is
 * throttled by the tracker behind it.
 */
export interface ProgressSink {
  setPhase(phase: Phase): void;
  setTotal(bytes: number | undefined): void;
  addBytes(bytes: number): void;
  addEntries(count: number): void;
  /** Archive bytes moved to or from the repository so far (a running total from the driver). */
  setTransferred(bytes: number): void;
  /**
   * A deduplicating format's write: `newBytes` more payload bytes stored as new blobs,
   * `dedupedBytes` more found stored already (or unchanged since the parent). Increments.
   */
  addStored(newBytes: number, dedupedBytes: number): void;
}

/** A sink that drops everything, for callers that do not follow progress. */
export const nullProgress: ProgressSink = {
  setPhase() {},
  setTotal() {},
  addBytes() {},
  addEntries() {},
  setTransferred() {},
  addStored() {},
};

/**
 * Counts bytes and entries and hands a report to `publish` at most once per `intervalMs`
 * (and once more on `flush`), with the rate over the whole job and the ETA when the total is known.
 * The first report comes one interval after the start (the job's `started` event says it began),
 * so a job shorter than that publishes once, at its `flush`: each report is a Redis write of the
 * job's progress, which small jobs paid twice.
 */
export class ProgressTracker implements ProgressSink {
  private phase: Phase = 'preparing';
  private total: number | undefined;
  private bytes = 0;
  private entries = 0;
  private transferred: number | undefined;
  private stored: { bytesNew: number; bytesDeduplicated: number } | undefined;
  private readonly startedAt = Date.now();
  private lastPublishedAt = this.startedAt;

  constructor(
    private readonly publish: (report: ProgressReport) => void,
    private readonly intervalMs = 1000,
  ) {}

  setPhase(phase: Phase): void {
    this.phase = phase;
    this.maybePublish();
  }

  setTotal(bytes: number | undefined): void {
    this.total = bytes;
  }

  addBytes(bytes: number): void {
    this.bytes += bytes;
    this.maybePublish();
  }

  addEntries(count: number): void {
    this.entries += count;
    this.maybePublish();
  }

  setTransferred(bytes: number): void {
    this.transferred = bytes;
    this.maybePublish();
  }

  addStored(newBytes: number, dedupedBytes: number): void {
    this.stored ??= { bytesNew: 0, bytesDeduplicated: 0 };
    this.stored.bytesNew += newBytes;
    this.stored.bytesDeduplicated += dedupedBytes;
    this.maybePublish();
  }

  /** The report as of now. */
  snapshot(): ProgressReport {
    const elapsed = (Date.now() - this.startedAt) / 1000;
    const bytesPerSecond = elapsed > 0 ? Math.round(this.bytes / elapsed) : 0;
    const report: ProgressReport = {
      phase: this.phase,
      bytesDone: this.bytes,
      entriesDone: this.entries,
      bytesPerSecond,
    };
    if (this.transferred !== undefined) report.bytesTransferred = this.transferred;
    if (this.stored) Object.assign(report, this.stored);
    if (this.total !== undefined) {
      report.bytesTotal = this.total;
      if (bytesPerSecond > 0) report.etaSeconds = Math.max(0, Math.round((this.total - this.bytes) / bytesPerSecond));
    }
    return report;
  }

  /** Publishes the current report regardless of the throttle. */
  flush(): void {
    this.lastPublishedAt = Date.now();
    this.publish(this.snapshot());
  }

  private maybePublish(): void {
    const now = Date.now();
    if (now - this.lastPublishedAt >= this.intervalMs) this.flush();
  }
}
