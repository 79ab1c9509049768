import { describe, expect, it } from 'vitest';
import { forEachBounded } from './bounded-parallel.js';

describe('forEachBounded', () => {
  it('calls fn on every item with at most limit in flight', async () => {
    let running = 0;
    let most = 0;
    const seen: number[] = [];
    await forEachBounded([1, 2, 3, 4, 5], 2, async (item) => {
      most = Math.max(most, ++running);
      await new Promise((resolve) => setImmediate(resolve));
      seen.push(item);
      running--;
    });
    expect([seen.sort(), most]).toEqual([[1, 2, 3, 4, 5], 2]);
  });

  it.each([Number.NaN, undefined])('refuses a limit of %s, naming it, rather than act on none of the items', async (limit) => {
    // NaN started no worker at all: it resolved at once, as if every item had been done (a limit read from an unset setting).
    const seen: number[] = [];
    await expect(forEachBounded([1, 2, 3], limit as number, async (item) => void seen.push(item))).rejects.toThrow(
      new RangeError(`forEachBounded: limit must be a number, got ${limit}`),
    );
    expect(seen).toEqual([]);
  });

  it('a limit below 1 counts as 1: every item is done, one at a time', async () => {
    const seen: number[] = [];
    await forEachBounded([1, 2, 3], 0, async (item) => void seen.push(item));
    expect(seen).toEqual([1, 2, 3]);
  });
});
