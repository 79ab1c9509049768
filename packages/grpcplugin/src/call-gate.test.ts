import { describe, expect, it } from 'vitest';
import { CallGate } from './call-gate.js';

/** The drain plugin's classes: cordons, then drain calls, then Events. */
const ORDER = ['cordon', 'drain', 'event'] as const;

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
  it('refuses a limit that is not a whole number of at least 1', () => {
    for (const limit of [0, 1.5]) expect(() => new CallGate(limit, ORDER)).toThrow(new RangeError(`the in-flight limit must be an integer >= 1, got ${limit}`));
  });

  it('keeps at most `limit` calls in flight and hands a freed slot to cordons, then drain calls, then events', async () => {
    const gate = new CallGate(2, ORDER);
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

  it('drops a waiting call whose signal aborts, unsent, and sends none whose signal has aborted already', async () => {
    const gate = new CallGate(1, ORDER);
    const log: string[] = [];
    const first = heldCall(log, 'first');
    const dropped = heldCall(log, 'dropped');
    const controller = new AbortController();
    const running = gate.run('drain', first.call);
    const waiting = gate.run('drain', dropped.call, controller.signal);
    const next = gate.run('drain', async () => 'next');
    await settle();
    controller.abort(new Error('call cancelled'));
    await expect(waiting).rejects.toThrow('call cancelled');
    expect(gate.queued()).toEqual({ cordon: 0, drain: 1, event: 0 });
    await expect(gate.run('cordon', async () => 'late', controller.signal)).rejects.toThrow('call cancelled');
    first.finish();
    expect([await running, await next]).toEqual(['first', 'next']);
    expect(log).toEqual(['start first']);
  });

  it('refuses a call of a class it was not given, and keeps its slots', async () => {
    const gate = new CallGate(1, ORDER);
    await expect(gate.run('other' as 'drain', async () => 'never')).rejects.toThrow('no call class "other" in this gate (cordon, drain, event)');
    expect(await gate.run('event', async () => 'next')).toBe('next');
  });

  it('frees the slot of a call that fails', async () => {
    const gate = new CallGate(1, ORDER);
    await expect(gate.run('drain', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await gate.run('drain', async () => 'next')).toBe('next');
      });
});
