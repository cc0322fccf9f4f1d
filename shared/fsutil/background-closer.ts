import type { FileHandle } from 'node:fs/promises';
import { SnapworkerError } from '../errors.js';

/**
 * Closes written files off the writer's critical path, optionally fsyncing each first. Up to
 * `concurrency` files are in flight; `add` waits for room, so open handles stay bounded. Running
 * many fsyncs at once lets the filesystem batch them into few journal commits, which is much
 * cheaper than one blocking fsync per small file.
 */
export class BackgroundCloser {
  private readonly inFlight = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  /**
   * @param concurrency most handles syncing/closing at once (at least 1).
   * @param fsync sync each file's data and metadata before closing it.
   */
  constructor(
    private readonly concurrency: number,
    private readonly fsync: boolean,
  ) {}

  /** Hands over a handle (the closer owns it from now on). Throws the first earlier sync/close failure. */
  async add(handle: FileHandle, label: string): Promise<void> {
    this.throwIfFailed();
    while (this.inFlight.size >= this.concurrency) await Promise.race(this.inFlight);
    const task = this.finish(handle, label).catch((error: unknown) => {
      this.failure ??= { error };
    });
    const tracked = task.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
    this.throwIfFailed();
  }

  /** Waits until every handle is closed; throws the first failure. */
  async drain(): Promise<void> {
    await Promise.all(this.inFlight);
    this.throwIfFailed();
  }

  /** Waits until every handle is closed, ignoring failures (for cleanup paths). */
  async discard(): Promise<void> {
    await Promise.all(this.inFlight);
  }

  private async finish(handle: FileHandle, label: string): Promise<void> {
    try {
      if (this.fsync) await handle.sync();
    } catch (cause) {
      throw new SnapworkerError(`fsync ${label}: ${(cause as Error).message}`, { cause });
    } finally {
      await handle.close();
    }
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}
