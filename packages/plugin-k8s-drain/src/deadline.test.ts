import { manualClock } from '@hollowtrees/grpcplugin/testing';
import { describe, expect, it } from 'vitest';
import { Deadline, DeadlineReachedError, DrainStoppedError } from './deadline.js';

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const AT = Date.parse('2026-11-25T10:00:10Z');

describe('Deadline', () => {
  it('aborts at its time with a DeadlineReachedError that says when', async () => {
    const clock = manualClock(AT - 10_000);
    const deadline = new Deadline(AT, undefined, clock);
    expect(deadline.remainingMs()).toBe(10_000);
    clock.advance(9_999);
    await flush();
    expect(deadline.signal.aborted).toBe(false);
    clock.advance(1);
    await flush();
    expect(deadline.remainingMs()).toBe(0);
    const reason = deadline.signal.reason as DeadlineReachedError;
    expect(reason).toBeInstanceOf(DeadlineReachedError);
    expect([reason.name, reason.message, reason.at]).toEqual(['DeadlineReachedError', 'deadline 2026-11-25T10:00:10.000Z reached', AT]);
  });

  it('aborts at a time further out than one timer holds (30 days), not before', async () => {
    const days30 = 30 * 86_400_000;
    const clock = manualClock(AT - days30);
    const deadline = new Deadline(AT, undefined, clock);
    for (const step of [86_400_000, days30 - 86_400_000 - 1]) {
      clock.advance(step);
      await flush();
      expect(deadline.signal.aborted).toBe(false);
    }
    clock.advance(1);
    await flush();
    expect(deadline.signal.reason).toBeInstanceOf(DeadlineReachedError);
  });

  it('a stopped pool drain is a deadline reached, named and worded for the resolution', () => {
    const stopped = new DrainStoppedError(AT);
    expect(stopped).toBeInstanceOf(DeadlineReachedError);
    expect([stopped.name, stopped.message]).toEqual(['DrainStoppedError', 'drain stopped at 2026-11-25T10:00:10.000Z: the price surge resolved']);
  });

  it("aborts with the parent's reason, also when the parent had aborted before", () => {
    const clock = manualClock(AT - 1_000);
    const parent = new AbortController();
    const later = new Deadline(AT, parent.signal, clock);
    parent.abort(new Error('call cancelled'));
    expect(later.signal.reason).toMatchObject({ message: 'call cancelled' });
    expect(new Deadline(AT, parent.signal, clock).signal.reason).toMatchObject({ message: 'call cancelled' });
  });

  it('race: the promise when it settles first, the abort reason when the deadline comes first', async () => {
    const clock = manualClock(AT - 1_000);
    const deadline = new Deadline(AT, undefined, clock);
    await expect(deadline.race(Promise.resolve('first'))).resolves.toBe('first');
    await expect(deadline.race(Promise.reject(new Error('own failure')))).rejects.toThrow('own failure');
    const slow = deadline.race(new Promise(() => {}));
    clock.advance(1_000);
    await expect(slow).rejects.toBeInstanceOf(DeadlineReachedError);
    // Already aborted: rejects at once, and the caller's promise failing later is handled.
    await expect(deadline.race(Promise.reject(new Error('ignored')))).rejects.toBeInstanceOf(DeadlineReachedError);
  });

  it('once disposed, neither its time nor its parent aborts it', async () => {
    const clock = manualClock(AT - 1_000);
    const parent = new AbortController();
    const deadline = new Deadline(AT, parent.signal, clock);
    deadline.dispose();
    clock.advance(1_000);
    parent.abort(new Error('late'));
    await flush();
    expect(deadline.signal.aborted).toBe(false);
  });

  it('sleep waits on the clock and ends with the abort reason', async () => {
    const clock = manualClock(AT - 1_000);
    const deadline = new Deadline(AT, undefined, clock);
    const short = deadline.sleep(100);
    clock.advance(100);
    await expect(short).resolves.toBeUndefined();
    const long = deadline.sleep(5_000);
    deadline.abort(new Error('stop'));
    await expect(long).rejects.toThrow('stop');
  });
});
