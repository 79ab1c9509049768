import type { HandleResult } from '@hollowtrees/grpcplugin';
import { describe, expect, it } from 'vitest';
import { PoolRegistry, type PoolRun } from './pool-registry.js';

/** A run whose outcome the test settles, and which counts its stops. */
function run(since: number): PoolRun & { finish: (result?: HandleResult) => void; fail: (err: Error) => void; stops: number } {
  let finish!: (result?: HandleResult) => void;
  let fail!: (err: Error) => void;
  const outcome = new Promise<HandleResult>((resolve, reject) => {
    finish = (result = { message: 'drained' }) => resolve(result);
    fail = reject;
  });
  const r = { since, outcome, stops: 0, finish, fail, stop: () => void r.stops++, get stopped() { return r.stops > 0; }, undoneFor: undefined, adopt: (t: number) => void (r.since = Math.max(r.since, t)) };
  return r;
}

const settled = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('PoolRegistry', () => {
  it('starts one run per pool; calls meanwhile join it; once it has ended, failed or not, the next call starts a new one', async () => {
    const registry = new PoolRegistry();
    const first = run(1);
    const started = registry.startOrJoin('a', 0, () => first);
    expect(started.run).toBe(first);
    expect(started.joined).toBe(false);
    const joined = registry.startOrJoin('a', 0, () => run(2));
    expect(joined.run).toBe(first);
    expect(joined.joined).toBe(true);
    const other = run(3);
    expect(registry.startOrJoin('b', 0, () => other).run).toBe(other);

    first.fail(new Error('failed'));
    await first.outcome.catch(() => undefined);
    await settled();
    const second = run(4);
    expect(registry.startOrJoin('a', 0, () => second).run).toBe(second);
    second.finish();
    await second.outcome;
    await settled();
    const third = run(5);
    const after = registry.startOrJoin('a', 0, () => third);
    expect(after.run).toBe(third);
    expect(after.joined).toBe(false);
  });

  it('a newer surge that joins a run makes it newer, so an older resolution leaves it; a stopped run is not made newer', () => {
    const registry = new PoolRegistry();
    const first = run(100);
    registry.startOrJoin('a', 100, () => first);
    registry.startOrJoin('a', 300, () => run(300));
    registry.startOrJoin('a', 200, () => run(200));
    expect(first.since).toBe(300);
    expect(registry.resolve('a', 250)).toEqual({ newer: first });
    expect(registry.resolve('a', 300)).toEqual({ stopped: first });
    registry.startOrJoin('a', 400, () => run(400));
    expect(first.since).toBe(300);
  });

  it('a resolution stops a run whose surge is not newer, the same instant included, and leaves a newer one', () => {
    const registry = new PoolRegistry();
    expect(registry.resolve('a', 100)).toEqual({ none: true });
    expect(registry.resolvedAt('a')).toBe(100);

    const newer = run(200);
    registry.startOrJoin('a', 0, () => newer);
    expect(registry.resolve('a', 150)).toEqual({ newer });
    expect(newer.stops).toBe(0);
    expect(registry.resolve('a', 200)).toEqual({ stopped: newer });
    expect(newer.stops).toBe(1);
    // The latest resolution is kept, whatever order they come in.
    registry.resolve('a', 120);
    expect(registry.resolvedAt('a')).toBe(200);
  });

  it('keeps the resolutions of the latest pools only, up to its limit', () => {
    const registry = new PoolRegistry(2);
    registry.resolve('a', 1);
    registry.resolve('b', 2);
    expect([registry.resolvedAt('a'), registry.resolvedAt('b')]).toEqual([1, 2]);
    // A new resolution of 'a' makes it the latest: 'b' is then the oldest, and goes when 'c' comes.
    registry.resolve('a', 3);
    registry.resolve('c', 4);
    expect([registry.resolvedAt('a'), registry.resolvedAt('b'), registry.resolvedAt('c')]).toEqual([3, undefined, 4]);
  });

  it('gives each pool one memory the drains share', () => {
    const registry = new PoolRegistry();
    const memory = registry.memory('a');
    expect(memory).toEqual({ cordoned: new Map(), done: new Map(), uncordoning: new Map(), lastStart: undefined });
    memory.cordoned.set('n1', { uid: undefined, wasUnschedulable: false });
    expect(registry.memory('a')).toBe(memory);
    expect(registry.memory('b')).not.toBe(memory);
  });

  it('keeps the memories of the pools used last, up to its limit, and any that still holds a cordon or serves a drain', () => {
    const registry = new PoolRegistry(4);
    const holding = registry.memory('holding');
    holding.cordoned.set('n1', { uid: undefined, wasUnschedulable: false });
    const running = registry.memory('running');
    registry.startOrJoin('running', 1, () => ({ since: 1, outcome: new Promise(() => {}), stopped: false, undoneFor: undefined, stop: () => {}, adopt: () => {} }));
    // Pools named by events without a drain of their own: beyond the limit, the least recently used goes.
    const first = registry.memory('p1');
    const second = registry.memory('p2');
    expect(registry.memory('p2')).toBe(second);
    registry.memory('p3');
    expect(registry.memory('p2')).toBe(second);
    expect(registry.memory('p1')).not.toBe(first);
    for (let i = 0; i < 100; i++) registry.memory(`p-${i}`);
    expect(registry.memory('holding')).toBe(holding);
    expect(registry.memory('running')).toBe(running);
  });
});
