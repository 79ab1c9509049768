/** The longest delay a timer keeps: Node (and grpc-js' deadline timer with it) fires a longer one after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `ms`, when a timer can wait it; a RangeError naming `what` otherwise (NaN, Infinity, over {@link MAX_TIMER_MS}). */
export function checkedTimeout(what: string, ms: number): number {
  if (ms <= MAX_TIMER_MS) return ms; // false for NaN too
  throw new RangeError(`${what} must be a number of milliseconds up to ${MAX_TIMER_MS} (24.8 days), got ${ms}`);
}

/**
 * `ms`, when a call can be sent with it as its deadline from now: more than 0, and what a timer can wait
 * ({@link checkedTimeout}); a RangeError naming `what` otherwise. 0 or less failed every call with
 * DEADLINE_EXCEEDED, which callers retry as a slow plugin, never told what was wrong.
 */
export function checkedDeadlineMs(what: string, ms: number): number {
  if (ms <= 0) throw new RangeError(`${what} must be more than 0 milliseconds, got ${ms}`);
  return checkedTimeout(what, ms);
}

/**
 * `ms`, when it is a whole number of milliseconds from 1 to {@link MAX_TIMER_MS}; a RangeError naming
 * `what` otherwise (grpc-js takes 0 for "never" or "at once", and a timer fires a longer one at once).
 */
export function checkedTimerMs(what: string, ms: number): number {
  if (Number.isInteger(ms) && ms >= 1 && ms <= MAX_TIMER_MS) return ms;
  throw new RangeError(`${what} must be a whole number of milliseconds from 1 to ${MAX_TIMER_MS} (24.8 days), got ${ms}`);
}

/**
 * Calls `fire` at `atMs` (epoch ms, as `now` reads it), however far off: a time past what one timer
 * holds is waited for in steps of at most {@link MAX_TIMER_MS}, where a single timer would fire
 * after 1 ms. Returns what stops it.
 */
export function timerAt(atMs: number, fire: () => void, now: () => number = Date.now): () => void {
  let timer: NodeJS.Timeout;
  const arm = (): void => {
    const left = atMs - now();
    timer = setTimeout(left > MAX_TIMER_MS ? arm : fire, Math.max(0, Math.min(left, MAX_TIMER_MS)));
  };
  arm();
  return () => clearTimeout(timer);
}
