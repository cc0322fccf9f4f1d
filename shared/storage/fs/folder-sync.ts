import { fsyncPath } from '../../fsutil/fsync.js';

/**
 * Folder fsyncs shared by the puts that need them at the same time (group commit, as databases
 * flush their log): a caller is served by the next fsync of its folder that starts after it asked,
 * so one fsync can make several renames into the folder durable. A snapshot's archive and entry
 * index finish together and rename into the same folder; this turns their two folder fsyncs into
 * one whenever the second asks while the first is still waiting to start or running.
 *
 * Per folder: at most one fsync runs, and at most one more waits for it; every caller arriving
 * meanwhile joins the waiting one (which starts after their renames, so it covers them). A failed
 * fsync rejects each caller it served.
 */
export class FolderSync {
  private readonly running = new Map<string, Promise<void>>();
  private readonly waiting = new Map<string, Promise<void>>();

  /** Resolves once an fsync of `folder` (absolute path) that started after this call succeeded. */
  sync(folder: string): Promise<void> {
    const waiting = this.waiting.get(folder);
    if (waiting) return waiting;
    const running = this.running.get(folder);
    if (!running) return this.start(folder);
    // The running fsync may have started before the caller's rename: wait for it, then one more.
    const next = running
      .catch(() => {})
      .then(() => {
        this.waiting.delete(folder);
        return this.start(folder);
      });
    this.waiting.set(folder, next);
    return next;
  }

  private start(folder: string): Promise<void> {
    const sync: Promise<void> = fsyncPath(folder).finally(() => {
      if (this.running.get(folder) === sync) this.running.delete(folder);
    });
    this.running.set(folder, sync);
    return sync;
  }
}
