import { describe, expect, it } from 'vitest';
import { exponentialBackoff } from './backoff.js';

describe('exponentialBackoff', () => {
  const options = { initialMs: 100, maxMs: 1_000, multiplier: 3 };

  it('grows by the multiplier from initialMs; the random factor scales each wait into [0.5, 1) of it', () => {
    expect([1, 2, 3].map(exponentialBackoff({ ...options, random: () => 0 }))).toEqual([50, 150, 450]);
    expect([1, 2, 3].map(exponentialBackoff({ ...options, random: () => 0.5 }))).toEqual([75, 225, 675]);
  });

  it('never waits longer than maxMs', () => {
    expect([4, 10].map(exponentialBackoff({ ...options, random: () => 0.5 }))).toEqual([750, 750]);
  });

  it('defaults: 250 ms growing twofold up to 5 s', () => {
    expect([1, 2, 3, 5, 6, 20].map(exponentialBackoff({ random: () => 0 }))).toEqual([125, 250, 500, 2_000, 2_500, 2_500]);
  });

  it('draws the factor from Math.random by default', () => {
    const waits = new Set(Array.from({ length: 20 }, () => exponentialBackoff()(1)));
    expect(waits.size).toBeGreaterThan(1);
    for (const wait of waits) {
      expect(wait).toBeGreaterThanOrEqual(125);
      expect(wait).toBeLessThan(250);
    }
  });
});
