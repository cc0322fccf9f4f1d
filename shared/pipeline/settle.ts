/**
 * Awaits every promise even when one fails, so nothing keeps running after the caller moves on.
 * On the first failure `onFirstFailure` runs (to destroy a shared stream and unblock the others);
 * once all have settled, the first error in time is thrown: it is the cause, the later ones are
 * usually its echo ("premature close").
 */
export async function settleAll<T extends readonly unknown[]>(
  promises: { [K in keyof T]: Promise<T[K]> },
  onFirstFailure: (err: unknown) => void,
): Promise<T> {
  let first: { error: unknown } | undefined;
  const guarded = (promises as readonly Promise<unknown>[]).map((p) =>
    p.catch((error: unknown) => {
      if (!first) {
        first = { error };
        onFirstFailure(error);
      }
      throw error;
    }),
  );
  const results = await Promise.allSettled(guarded);
  if (first) throw first.error;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
