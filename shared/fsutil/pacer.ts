import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Bounds bursts of synchronous work: `pace()` gives the event loop a turn once `burstMs` have
 * passed since the last one, so timers (lock renewals, heartbeats) and I/O callbacks keep
 * running while a long loop does blocking calls.
 */
export class Pacer {
  private lastTurn = performance.now();

  constructor(private readonly burstMs: number) {}

  async pace(): Promise<void> {
    const now = performance.now();
    if (now - this.lastTurn < this.burstMs) return;
    await nextTurn();
    this.lastTurn = performance.now();
  }
}
