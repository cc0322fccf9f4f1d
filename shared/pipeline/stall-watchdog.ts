import { StalledError } from '../errors.js';
import type { Phase, ProgressSink } from '../progress.js';

export interface StallWatchdogOptions {
  /** The job's own signal; the watchdog's signal follows it. */
  signal: AbortSignal;
  /** Where progress really goes; every call through the watchdog's sink counts as progress. */
  progress: ProgressSink;
  /** Seconds without any progress before the job is stopped; 0 turns the watchdog off. */
  timeoutSeconds: number;
  /** What is running, for the message: `restore`, `verify`, `snapshot`. */
  operation: string;
}

/**
 * Stops a job whose reads and writes make no progress for `timeoutSeconds`, so a stalled stream
 * (a deadlocked pipeline, a peer that stops answering) fails the job with a message naming the
 * phase instead of holding a worker slot forever while BullMQ keeps renewing its lock.
 *
 * Progress is any call of the sink: bytes, entries, transferred bytes or a new phase. Pass
 * `signal` and `progress` down in place of the job's own; when the job then fails, `error`
 * (a StalledError) is the reason to report, whatever error the abort surfaced as. Call `stop()`
 * when the job ends.
 */
export class StallWatchdog {
  readonly signal: AbortSignal;
  readonly progress: ProgressSink;
  /** Set when the watchdog fired. */
  error: StalledError | undefined;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout | undefined;
  private lastProgressAt = Date.now();
  private phase: Phase = 'preparing';

  constructor(private readonly options: StallWatchdogOptions) {
    this.signal = AbortSignal.any([options.signal, this.controller.signal]);
    const inner = options.progress;
    const touch = () => (this.lastProgressAt = Date.now());
    this.progress = {
      setPhase: (phase) => {
        this.phase = phase;
        touch();
        inner.setPhase(phase);
      },
      setTotal: (bytes) => inner.setTotal(bytes),
      addBytes: (bytes) => {
        touch();
        inner.addBytes(bytes);
      },
      addEntries: (count) => {
        touch();
        inner.addEntries(count);
      },
      setTransferred: (bytes) => {
        touch();
        inner.setTransferred(bytes);
      },
      addStored: (newBytes, dedupedBytes) => {
        touch();
        inner.addStored(newBytes, dedupedBytes);
      },
    };
    if (options.timeoutSeconds > 0) {
      const timeoutMs = options.timeoutSeconds * 1000;
      // Checked a few times per timeout, so it fires at most a quarter late.
      this.timer = setInterval(() => this.check(timeoutMs), Math.max(50, Math.min(timeoutMs / 4, 5000)));
      this.timer.unref();
    }
  }

  /** Ends the watch; call on every path once the job settled. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private check(timeoutMs: number): void {
    if (this.error || this.options.signal.aborted) return;
    if (Date.now() - this.lastProgressAt < timeoutMs) return;
    const { operation, timeoutSeconds } = this.options;
    this.error = new StalledError(
      `${operation}: no progress for ${timeoutSeconds} s while ${this.phase}; stopped (SNAPWORKER_STALL_TIMEOUT_SECONDS)`,
    );
    this.stop();
    this.controller.abort(this.error);
  }
}
