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

  it('finds the runs it keeps by event, newest first, after the list of the newest dropped them; forgets the oldest once full', () => {
    const recent = new RecentRuns(2, 5);
    const of = (...ids: string[]): string[] => recent.ofEvents(new Set(ids)).map((r) => `${r.eventId}@${r.finishedAt}`);
    // e1 runs twice (a re-send), e2 once, between them.
    for (const r of [run(1), run(2), { ...run(1), finishedAt: 3 }, run(4), run(5)]) recent.add(r);
    expect(recent.list().map((r) => r.eventId)).toEqual(['e5', 'e4']);
    expect(of('e1')).toEqual(['e1@3', 'e1@1']);
    expect(of('e2', 'e1', 'never')).toEqual(['e1@3', 'e2@2', 'e1@1']);
    recent.add(run(6));
    expect(of('e1')).toEqual(['e1@3']);
    for (const n of [7, 8, 9]) recent.add(run(n));
    expect([of('e1', 'e2'), of('e9')]).toEqual([[], ['e9@9']]);
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
