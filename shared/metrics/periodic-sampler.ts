/** A sampler running on its timer (see `samplePeriodically`). */
export interface PeriodicSampler {
  /** Stops sampling and waits for a sample in flight. Never throws. */
  stop(): Promise<void>;
}

/**
 * Runs `sample` now and then every `intervalMs`, on a timer rather than per scrape, so
 * Prometheus (or several of them) scraping many workers never multiplies the load on what is
 * sampled. A tick is skipped while a sample is still running, rather than piling samples up. The
 * timer is unref'd: sampling never keeps a process alive that is otherwise done. `sample` must
 * not throw (it logs its own failures); `signal` fires on `stop`.
 * @throws RangeError for an interval that is not a positive number (`what` names the sampler).
 */
export function samplePeriodically(sample: (signal: AbortSignal) => Promise<void>, intervalMs: number, what: string): PeriodicSampler {
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new RangeError(`${what}: intervalMs must be a positive number, got ${intervalMs}`);
  const stopping = new AbortController();
  let inFlight: Promise<void> | undefined;
  const tick = (): void => {
    if (stopping.signal.aborted || inFlight) return;
    inFlight = sample(stopping.signal).finally(() => {
      inFlight = undefined;
    });
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  tick();
  return {
    async stop() {
      stopping.abort();
      clearInterval(timer);
      await inFlight;
    },
  };
}
