/**
 * Reports, while a client program runs, how far it got: `sample` is called every `intervalMs`
 * (a staged dump's bytes, a restored database's size) and `onGrowth` gets each increase. pg_dump
 * and pg_restore say nothing while they work, and a job that reports nothing for
 * `SNAPWORKER_STALL_TIMEOUT_SECONDS` is stopped as stalled; this keeps a long dump or restore
 * visibly alive, with real figures. A failed sample (the folder not made yet) counts as no growth.
 */
export class GrowthMeter {
  private last = 0;
  private running: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly sample: () => Promise<number>,
    private readonly onGrowth: (bytes: number) => void,
    intervalMs = 1000,
  ) {
    this.timer = setInterval(() => {
      this.running ??= this.measure().finally(() => (this.running = undefined));
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops sampling; with `final`, takes one last sample so the growth reported adds up to the end size. */
  async stop({ final = false } = {}): Promise<void> {
    clearInterval(this.timer);
    await this.running;
    if (final) await this.measure();
  }

  private async measure(): Promise<void> {
    const size = await this.sample().catch(() => this.last);
    if (size > this.last) {
      this.onGrowth(size - this.last);
      this.last = size;
    }
  }
}
