/**
 * Calls `fn` on every item with at most `limit` calls in flight; resolves when
 * all have settled. `fn` must not reject: it reports its own outcome. For a
 * plugin's fan-out (evictions of a node, detaches of a group) that must not
 * send everything at once. A `limit` below 1 counts as 1; NaN rejects with a RangeError.
 */
export async function forEachBounded<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  // NaN (or, from JavaScript, undefined) would start no worker, and resolve as if every item were done.
  if (typeof limit !== 'number' || Number.isNaN(limit)) throw new RangeError(`forEachBounded: limit must be a number, got ${limit}`);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
