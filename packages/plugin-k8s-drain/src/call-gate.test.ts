import { describe, expect, it } from 'vitest';
import { CallGate } from './call-gate.js';

/** A call that finishes when told to. */
function heldCall(log: string[], name: string): { call: () => Promise<string>; finish: () => void } {
  let finish = (): void => {};
  const done = new Promise<void>((resolve) => (finish = resolve));
  return {
    call: async () => {
      log.push(`start ${name}`);
      await done;
      return name;
    },
    finish: () => finish(),
  };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('CallGate', () => {
  it('keeps at most `limit` calls in flight and hands a freed slot to cordons, then drain calls, then events', async () => {
    const gate = new CallGate(2);
    const log: string[] = [];
    const calls = {
      a: heldCall(log, 'evict-a'),
      b: heldCall(log, 'evict-b'),
      event: heldCall(log, 'event'),
      c: heldCall(log, 'evict-c'),
      cordon: heldCall(log, 'cordon'),
    };
    const results = [
      gate.run('drain', calls.a.call),
      gate.run('drain', calls.b.call),
      gate.run('event', calls.event.call),
      gate.run('drain', calls.c.call),
      gate.run('cordon', calls.cordon.call),
    ];
    await settle();
    expect(log).toEqual(['start evict-a', 'start evict-b']);
    expect(gate.queued()).toEqual({ cordon: 1, drain: 1, event: 1 });
    calls.a.finish();
    await settle();
    // The cordon came last but goes first.
    expect(log.at(-1)).toBe('start cordon');
    calls.b.finish();
    await settle();
    expect(log.at(-1)).toBe('start evict-c');
    calls.cordon.finish();
    await settle();
    expect(log.at(-1)).toBe('start event');
    calls.c.finish();
    calls.event.finish();
    expect(await Promise.all(results)).toEqual(['evict-a', 'evict-b', 'event', 'evict-c', 'cordon']);
    expect(gate.queued()).toEqual({ cordon: 0, drain: 0, event: 0 });
  });

  it('holds evictions to a few slots while a wave is being cordoned, and releases them once it is, and settled', async () => {
    const gate = new CallGate(4, { whileCordoning: 1, settleMs: 30 });
    const log: string[] = [];
    const cordoned = [gate.cordoning(), gate.cordoning()];
    const evictions = Array.from({ length: 4 }, (_, i) => heldCall(log, `evict-${i}`));
    const running = evictions.map((e) => gate.run('drain', e.call));
    const cordon = heldCall(log, 'cordon');
    const cordonCall = gate.run('cordon', cordon.call);
    await settle();
    // One eviction while cordons are pending; the cordon still gets a slot of its own.
    expect(log).toEqual(['start evict-0', 'start cordon']);
    cordon.finish();
    await cordonCall;
    for (const done of cordoned) done();
    await settle();
    // Every cordon is done, but the wave may still be arriving: the rest wait for the settle time.
    expect(log).toEqual(['start evict-0', 'start cordon']);
    await expect.poll(() => log.length, { timeout: 2_000, interval: 5 }).toBe(5);
    expect(log.slice(2).sort()).toEqual(['start evict-1', 'start evict-2', 'start evict-3']);
    for (const e of evictions) e.finish();
    expect(await Promise.all(running)).toEqual(['evict-0', 'evict-1', 'evict-2', 'evict-3']);
  });

  it('frees the slot of a call that fails', async () => {
    const gate = new CallGate(1);
    await expect(gate.run('drain', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await gate.run('drain', async () => 'next')).toBe('next');
    expect(() => new CallGate(0)).toThrow(RangeError);
  });
});
