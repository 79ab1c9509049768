import { describe, expect, it } from 'vitest';
import { fellBack, findCrossings, fixedThreshold, jumpThreshold, settledTime, type PriceSample } from './price-crossings.js';

const MINUTE = 60_000;
/** Samples at the given minutes, oldest first. */
const series = (...points: Array<[minute: number, price: number]>): PriceSample[] => points.map(([minute, price]) => ({ at: minute * MINUTE, price }));

describe('findCrossings', () => {
  it('a surge starts at the first sample above the threshold and ends at the first at or below it', () => {
    const samples = series([0, 0.05], [10, 0.25], [20, 0.3], [30, 0.2], [40, 0.21]);
    expect(findCrossings(samples, fixedThreshold('absolute', 0.2), 0)).toEqual([
      { kind: 'absolute', crossedAt: 10 * MINUTE, price: 0.25, threshold: 0.2, resolvedAt: 30 * MINUTE, resolvedPrice: 0.2 },
      { kind: 'absolute', crossedAt: 40 * MINUTE, price: 0.21, threshold: 0.2 },
    ]);
  });

  it('with hysteresis a price just under the threshold does not end the surge, so it does not flap', () => {
    const samples = series([0, 0.05], [10, 0.25], [20, 0.19], [30, 0.21], [40, 0.17]);
    expect(findCrossings(samples, fixedThreshold('absolute', 0.2), 0.1)).toEqual([
      { kind: 'absolute', crossedAt: 10 * MINUTE, price: 0.25, threshold: 0.2, resolvedAt: 40 * MINUTE, resolvedPrice: 0.17 },
    ]);
  });

  it('a jump is measured against the median of the prices in effect during the window before it, and that level holds until the surge ends', () => {
    // Before minute 70 (window opened at 10): 0.04 (in effect at 10), 0.05, 0.06, median 0.05; the 1.0 of minute -100 is out of it.
    const samples = series([-100, 1.0], [-90, 1.0], [0, 0.04], [30, 0.05], [50, 0.06], [70, 0.09], [80, 0.2], [90, 0.07], [100, 0.06]);
    const crossings = findCrossings(samples, jumpThreshold(1.5, 60 * MINUTE), 0);
    expect(crossings).toEqual([{ kind: 'jump', crossedAt: 70 * MINUTE, price: 0.09, threshold: expect.closeTo(0.075, 9) as number, resolvedAt: 90 * MINUTE, resolvedPrice: 0.07 }]);
  });

  it('a price equal to the threshold is not above it: no surge', () => {
    expect(findCrossings(series([0, 0.05], [10, 0.2]), fixedThreshold('absolute', 0.2), 0)).toEqual([]);
  });

  it('looks only at the samples after `after`, where no surge was open, though levels still look before it', () => {
    const samples = series([0, 0.3], [10, 0.1], [20, 0.3]);
    expect(findCrossings(samples, fixedThreshold('absolute', 0.2), 0, 10 * MINUTE)).toEqual([{ kind: 'absolute', crossedAt: 20 * MINUTE, price: 0.3, threshold: 0.2 }]);
    // A jump's level at minute 70 takes the prices before `after` (minute 60) from the window's opening (minute 10).
    const jumps = series([0, 0.04], [30, 0.06], [70, 0.1]);
    expect(findCrossings(jumps, jumpThreshold(1.5, 60 * MINUTE), 0, 60 * MINUTE)).toEqual([
      { kind: 'jump', crossedAt: 70 * MINUTE, price: 0.1, threshold: expect.closeTo(0.075, 9) as number },
    ]);
  });

  it('a jump\'s median is by value, and of an even count the mean of the middle two', () => {
    // In the hour before minute 0: 9 (in effect at -60), 10, 2, 1: by value 1, 2, 9, 10, median 5.5 (not 6, as by text or by time).
    const samples = series([-70, 9], [-40, 10], [-20, 2], [-10, 1], [0, 5.8]);
    expect(findCrossings(samples, jumpThreshold(1, 60 * MINUTE), 0)).toEqual([{ kind: 'jump', crossedAt: 0, price: 5.8, threshold: 5.5 }]);
  });

  it('a change exactly at the window\'s opening is the price in effect then: the window is whole', () => {
    expect(findCrossings(series([-60, 0.04], [0, 0.1]), jumpThreshold(1.5, 60 * MINUTE), 0)).toEqual([
      { kind: 'jump', crossedAt: 0, price: 0.1, threshold: expect.closeTo(0.06, 9) as number },
    ]);
  });

  it('a pool with a single sample has no level to jump from', () => {
    expect(findCrossings(series([0, 5]), jumpThreshold(1.5, 60 * MINUTE), 0)).toEqual([]);
  });

  it('a jump has no level until the samples reach back a whole window: a level on part of it would depend on where the read began', () => {
    expect(findCrossings(series([0, 0.03], [50, 0.05]), jumpThreshold(1.5, 60 * MINUTE), 0)).toEqual([]);
    expect(findCrossings(series([-20, 0.03], [50, 0.05]), jumpThreshold(1.5, 60 * MINUTE), 0)).toEqual([expect.objectContaining({ crossedAt: 50 * MINUTE })]);
  });

  it('is a function of the history: the same samples give the same crossings', () => {
    const samples = series([0, 0.05], [10, 0.3], [20, 0.05]);
    expect(findCrossings(samples, fixedThreshold('on-demand-ratio', 0.1), 0)).toEqual(findCrossings([...samples], fixedThreshold('on-demand-ratio', 0.1), 0));
  });
});

describe('settledTime', () => {
  const absolute = fixedThreshold('absolute', 0.2);

  it('a fixed threshold settles at the latest time at or below its reset level, or not at all when the read starts above it', () => {
    expect(settledTime(series([0, 0.05], [10, 0.1]), absolute, 0, 30 * MINUTE)).toBe(30 * MINUTE);
    expect(settledTime(series([0, 0.05], [10, 0.3], [20, 0.25]), absolute, 0, 30 * MINUTE)).toBe(0);
    // 0.19 is under the threshold but above its reset level (0.18): a surge could be open.
    expect(settledTime(series([0, 0.05], [10, 0.3], [20, 0.19]), absolute, 0.1, 30 * MINUTE)).toBe(0);
    expect(settledTime(series([10, 0.3], [20, 0.25]), absolute, 0, 30 * MINUTE)).toBeUndefined();
  });

  it('a jump settles where no change in the window before crossed, and not where a level there is unknown', () => {
    const jump = jumpThreshold(1.5, 60 * MINUTE);
    const samples = series([-200, 0.03], [-100, 0.031], [0, 0.05]);
    expect(settledTime(samples, jump, 0, 30 * MINUTE)).toBe(-100 * MINUTE);
    expect(settledTime(samples, jump, 0, 90 * MINUTE)).toBe(90 * MINUTE);
    expect(settledTime(samples.slice(1), jump, 0, 30 * MINUTE)).toBeUndefined();
  });
});

describe('settledTime, at the edges', () => {
  it('a change at `until` itself is the price then: a surge that starts then is open', () => {
    expect(settledTime(series([0, 0.05], [30, 0.3]), fixedThreshold('absolute', 0.2), 0, 30 * MINUTE)).toBe(0);
    // A change after `until` is not yet in effect then.
    expect(settledTime(series([0, 0.05], [40, 0.3]), fixedThreshold('absolute', 0.2), 0, 30 * MINUTE)).toBe(30 * MINUTE);
  });

  it('a jump\'s window that opens exactly at the first change is whole', () => {
    expect(settledTime(series([-60, 0.03], [0, 0.04]), jumpThreshold(1.5, 60 * MINUTE), 0, 0)).toBe(0);
    // A change at exactly its level is not above it.
    expect(settledTime(series([-60, 0.04], [0, 0.06]), jumpThreshold(1.5, 60 * MINUTE), 0, 0)).toBe(0);
  });
});

describe('fellBack', () => {
  it('a surge ends at the first sample after its crossing at or below its reset level, whatever crossings a read finds', () => {
    const surge = { kind: 'jump' as const, crossedAt: 0, price: 0.05, threshold: 0.045 };
    expect(fellBack(series([0, 0.05], [30, 0.06], [60, 0.041]), surge, 0.1)).toBeUndefined();
    // A low price before the crossing is no end of it.
    expect(fellBack(series([-30, 0.01], [0, 0.05], [30, 0.06]), surge, 0.1)).toBeUndefined();
    expect(fellBack(series([0, 0.05], [60, 0.04], [90, 0.03]), surge, 0.1)).toEqual({ ...surge, resolvedAt: 60 * MINUTE, resolvedPrice: 0.04 });
  });
});
