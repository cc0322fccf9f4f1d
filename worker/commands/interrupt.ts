/**
 * `work`, or the error `onInterrupt` returns once SIGINT (Ctrl-C) or SIGTERM arrives. With
 * `waitForWork` the work is awaited after the signal too (it was told to stop through its
 * AbortSignal and cleans up first); otherwise the command gives up on it at once (a queued job
 * goes on without us). A second signal stops waiting either way.
 */
export function untilInterrupted<T>(work: Promise<T>, onInterrupt: () => Error, { waitForWork = false } = {}): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let interrupted: Error | undefined;
    const onSignal = () => {
      if (interrupted || !waitForWork) {
        cleanup();
        reject(interrupted ?? onInterrupt());
        return;
      }
      interrupted = onInterrupt();
    };
    const cleanup = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    work.then(
      (value) => {
        // Finished before the abort took hold: the result stands.
        cleanup();
        resolve(value);
      },
      (err: unknown) => {
        cleanup();
        reject(interrupted ?? err);
      },
    );
  });
}
