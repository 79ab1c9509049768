import type { CloudEvent } from '@hollowtrees/grpcplugin';
import { describe, expect, it } from 'vitest';
import { GroupStates, type GroupChange, type RunProgress } from './group-states.js';

const run = (id: string): RunProgress => ({
  event: { id, source: 's', specversion: '1.0', type: 't' } as CloudEvent,
  attributes: {},
  receivedAt: 0,
  next: 0,
  attempt: 1,
  restarts: 0,
});

describe('GroupStates', () => {
  it('a full table is swept at most once a second, so a flood of new groups cannot make every event walk all of them', () => {
    const states = new GroupStates(undefined, 2);
    const t0 = 1_000_000;
    states.tryStart('a', 'f', run('a'), t0);
    states.succeeded('a', t0, 300);
    states.tryStart('b', 'f', run('b'), t0);
    states.succeeded('b', t0, 60_000);
    expect(states.tryStart('c', 'f', run('c'), t0)).toBe('full');
    // a's cooldown is over, but the last sweep was under a second ago.
    expect(states.tryStart('c', 'f', run('c'), t0 + 999)).toBe('full');
    expect(states.tryStart('c', 'f', run('c'), t0 + 1_000)).toBe('started');
    expect(states.size).toBe(2);
  });

  it('a group already held is not refused for a full table, and one whose cooldown is over starts again in place', () => {
    const states = new GroupStates(undefined, 1);
    states.tryStart('a', 'f', run('a1'), 0);
    expect(states.tryStart('a', 'f', run('a2'), 0)).toBe('held');
    states.succeeded('a', 10, 100);
    expect(states.tryStart('a', 'f', run('a3'), 109)).toBe('held');
    expect(states.tryStart('a', 'f', run('a4'), 110)).toBe('started');
    expect(states.get('a')).toMatchObject({ phase: 'running', eventId: 'a4', since: 110 });
  });

  it('tells the journal every change in order, and nothing for a restore, a sweep or a group it does not have', () => {
    const changes: GroupChange[] = [];
    const states = new GroupStates((c) => changes.push(c));
    states.tryStart('a', 'f', run('a'), 0);
    states.progress('a', 'retrying', { ...run('a'), attempt: 2, retryAt: 50 });
    states.succeeded('a', 100, 1_000);
    states.progress('a', 'running', run('late')); // a cooling group has no run to record
    states.release('missing');
    states.succeeded('missing', 0, 1_000);
    states.progress('missing', 'running', run('m'));
    states.restore({ key: 'r', flow: 'f', phase: 'cooling', eventId: 'r', since: 0, until: 10 });
    states.sweep(2_000);
    states.tryStart('b', 'f', run('b'), 0);
    states.succeeded('b', 5, 0); // no cooldown: free at once
    expect(changes.map((c) => [c.key, c.phase])).toEqual([['a', 'running'], ['a', 'retrying'], ['a', 'cooling'], ['b', 'running'], ['b', 'free']]);
    expect(changes[2]).toEqual({ key: 'a', flow: 'f', phase: 'cooling', eventId: 'a', since: 100, until: 1_100 });
    expect(states.size).toBe(0);
  });

  it('counts and lists only cooldowns that are still running', () => {
    const states = new GroupStates();
    for (const [key, flow, until] of [['a', 'f', 100], ['b', 'f', 200], ['c', 'g', 200]] as const) {
      states.tryStart(key, flow, run(key), 0);
      states.succeeded(key, 0, until);
    }
    states.tryStart('d', 'g', run('d'), 0);
    expect(states.coolingByFlow(100)).toEqual(new Map([['f', 1], ['g', 1]]));
    expect(states.list(100).map((s) => s.key)).toEqual(['b', 'c', 'd']);
    expect(states.holder('a', 99)?.phase).toBe('cooling');
    expect(states.holder('a', 100)).toBeUndefined();
    expect(states.sweep(199)).toBe(1);
    expect(states.sweep(200)).toBe(2);
    expect(states.list(200).map((s) => s.key)).toEqual(['d']);
  });
});
