/** The longest delay a timer keeps: Node (and grpc-js' deadline timer with it) fires a longer one after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `ms`, when a timer can wait it; a RangeError naming `what` otherwise (NaN, Infinity, over {@link MAX_TIMER_MS}). */
export function checkedTimeout(what: string, ms: number): number {
  if (ms <= MAX_TIMER_MS) return ms; // false for NaN too
  throw new RangeError(`${what} must be a number of milliseconds up to ${MAX_TIMER_MS} (24.8 days), got ${ms}`);
}
