/**
 * Large batches are validated, turned into events and dispatched in slices,
 * letting the event loop turn between them, so a 10,000-alert batch does not
 * keep probes, other requests and plugin calls waiting. A slice ends after
 * this many alerts, or sooner once it has taken this long (starting a run
 * costs far more than validating an alert).
 */
const ALERTS_PER_SLICE = 500;
const SLICE_MS = 10;

/**
 * Returns a function to call before each item of one loop: within a slice it
 * returns nothing, and once the slice is full a promise to await, which resolves
 * after a turn of the event loop. Nothing to await within a slice: an `await` of
 * `undefined` would still cost a microtask turn per item.
 */
export function slicer(): () => Promise<void> | undefined {
  let count = 0;
  let started = performance.now();
  return () => {
    if (++count <= ALERTS_PER_SLICE && performance.now() - started < SLICE_MS) return undefined;
    return new Promise((resolve) =>
      setImmediate(() => {
        count = 1;
        started = performance.now();
        resolve();
      }),
    );
  };
}

/** Maps `items` in order, a slice at a time. */
export async function mapInSlices<T, R>(items: readonly T[], map: (item: T, index: number) => R): Promise<R[]> {
  const nextItem = slicer();
  const out = new Array<R>(items.length);
  for (let i = 0; i < items.length; i++) {
    const pause = nextItem();
    if (pause) await pause;
    out[i] = map(items[i]!, i);
  }
  return out;
}
