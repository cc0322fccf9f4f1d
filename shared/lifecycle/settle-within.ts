/**
 * Waits for `promise` at most `ms` milliseconds. Resolves true when it settled in time (whether
 * it resolved or rejected: shutdown steps report their own failures), false when time ran out;
 * the promise keeps running either way. The timer does not keep the process alive.
 */
export async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise.then(() => true as const, () => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
