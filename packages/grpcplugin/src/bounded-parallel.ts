/**
 * Calls `fn` on every item with at most `limit` calls in flight; resolves when
 * all have settled. `fn` must not reject: it reports its own outcome. For a
 * plugin's fan-out (evictions of a node, detaches of a group) that must not
 * send everything at once.
 */
export async function forEachBounded<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
