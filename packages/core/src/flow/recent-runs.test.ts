import { describe, expect, it } from 'vitest';
import { HeldBytes } from './held-bytes.js';
import { RecentRuns, type FinishedRun } from './recent-runs.js';

const run = (n: number): FinishedRun => ({ flow: 'f', groupKey: `k${n}`, eventId: `e${n}`, eventType: 't', outcome: 'succeeded', receivedAt: n, startedAt: n, finishedAt: n, calls: [] });

describe('RecentRuns', () => {
  it('lists the last runs newest first, dropping the oldest once full', () => {
    const recent = new RecentRuns(3);
    expect(recent.list()).toEqual([]);
    for (const n of [1, 2]) recent.add(run(n));
    expect(recent.list().map((r) => r.eventId)).toEqual(['e2', 'e1']);
    for (const n of [3, 4, 5]) recent.add(run(n));
    expect(recent.list().map((r) => r.eventId)).toEqual(['e5', 'e4', 'e3']);
  });

  it('keeps nothing when its capacity is 0', () => {
    const recent = new RecentRuns(0);
    recent.add(run(1));
    expect(recent.list()).toEqual([]);
  });
});

describe('HeldBytes', () => {
  it('holds up to exactly the flow\'s limit and the global one, and gives back what is released', () => {
    const held = new HeldBytes(100);
    expect(held.tryHold('a', 60, 60)).toBe(true);
    expect(held.tryHold('a', 60, 1)).toBe(false);
    expect(held.tryHold('b', 100, 40)).toBe(true);
    expect(held.tryHold('b', 100, 1)).toBe(false);
    expect([held.of('a'), held.of('b'), held.total]).toEqual([60, 40, 100]);
    held.release('a', 60);
    expect([held.of('a'), held.total]).toEqual([0, 40]);
    held.hold('a', 500); // a run accepted earlier is held whatever the limits
    expect(held.total).toBe(540);
  });
});
