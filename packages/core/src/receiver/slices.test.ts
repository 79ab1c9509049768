import { afterEach, describe, expect, it, vi } from 'vitest';
import { mapInSlices, slicer } from './slices.js';

/** The slicer reads `performance.now()`; these tests set it, so a busy machine cannot end a slice early. */
function clockAt(ms: number): { set: (ms: number) => void } {
  let now = ms;
  vi.spyOn(performance, 'now').mockImplementation(() => now);
  return { set: (to) => void (now = to) };
}

describe('slicer: a turn of the event loop every 500 items or 10 ms', () => {
  afterEach(() => void vi.restoreAllMocks());

  it('goes on at once for 500 items, then lets the loop turn, and starts a new slice after it', async () => {
    clockAt(1_000);
    const next = slicer();
    const first = Array.from({ length: 501 }, () => next());
    expect(first.slice(0, 500).filter((r) => r !== undefined)).toEqual([]);
    expect(first[500]).toBeInstanceOf(Promise);
    await first[500];
    const second = Array.from({ length: 500 }, () => next());
    expect(second.slice(0, 499).filter((r) => r !== undefined)).toEqual([]);
    expect(second[499]).toBeInstanceOf(Promise);
  });

  it('ends a slice once it has taken 10 ms, however few items, and times the next slice from the turn', async () => {
    const clock = clockAt(1_000);
    const next = slicer();
    expect(next()).toBeUndefined();
    clock.set(1_009.9);
    expect(next()).toBeUndefined();
    clock.set(1_010);
    const turn = next();
    expect(turn).toBeInstanceOf(Promise);
    await turn;
    clock.set(1_019.9);
    expect(next()).toBeUndefined();
  });

  it('maps every item in order with its index, across slices', async () => {
    clockAt(1_000);
    const items = Array.from({ length: 1_201 }, (_, i) => `a${i}`);
    const mapped = await mapInSlices(items, (item, i) => `${item}@${i}`);
    expect(mapped).toEqual(items.map((item, i) => `${item}@${i}`));
    expect(await mapInSlices([], () => 1)).toEqual([]);
  });
});
