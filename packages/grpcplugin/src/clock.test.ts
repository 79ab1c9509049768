import { afterEach, describe, expect, it, vi } from 'vitest';
import { deadlineOn, steadyClock, systemClock, wallAheadOf, wallTimeOf } from './clock.js';
import { MAX_TIMER_MS } from './timer-limit.js';

describe.each([
  ['systemClock', systemClock],
  ['steadyClock', steadyClock],
])('%s.sleep', (_name, clock) => {
  it('waits out a sleep longer than one timer holds (2^31-1 ms, 24.8 days) instead of ending it at once', async () => {
    // setTimeout fires anything longer after 1 ms: a handler sleeping until a stream call's deadline (timeout_ms up to 49.7 days) woke at once.
    const stop = new AbortController();
    const slept = clock.sleep(MAX_TIMER_MS + 1_000, stop.signal).then(() => 'woke', () => 'aborted');
    await new Promise((resolve) => setTimeout(resolve, 100));
    stop.abort();
    expect(await slept).toBe('aborted');
  });

  it('wakes after a short sleep, and an abort before it ends rejects with the signal reason', async () => {
    await expect(clock.sleep(5)).resolves.toBeUndefined();
    const stop = new AbortController();
    const slept = clock.sleep(60_000, stop.signal);
    stop.abort(new Error('stopped'));
    await expect(slept).rejects.toThrow('stopped');
  });
});

describe('steadyClock.now', () => {
  afterEach(() => vi.restoreAllMocks());

  it('reads the wall clock, in whole ms, while the wall clock is not stepped', () => {
    const now = steadyClock.now();
    expect(Number.isInteger(now)).toBe(true);
    expect(Math.abs(now - Date.now())).toBeLessThan(50);
  });

  it('does not move when the wall clock is stepped 2 h forward or back', () => {
    const before = steadyClock.now();
    const wall = Date.now;
    for (const step of [2 * 3_600_000, -2 * 3_600_000]) {
      vi.spyOn(Date, 'now').mockImplementation(() => wall() + step);
      expect(steadyClock.now() - before).toBeLessThan(50);
      expect(steadyClock.now()).toBeGreaterThanOrEqual(before);
      vi.restoreAllMocks();
    }
  });
});

describe('wallAheadOf', () => {
  afterEach(() => vi.restoreAllMocks());

  it('on steadyClock: the steps of the wall clock, unmoved by the ms the two clocks differ by between reads (a Lease time written and read back comes back the same)', () => {
    const ahead = wallAheadOf(steadyClock);
    const start = ahead();
    const wall = Date.now;
    for (const jitter of [1, -1, 900, 0]) {
      vi.spyOn(Date, 'now').mockImplementation(() => wall() + jitter);
      expect(ahead()).toBe(start);
    }
    vi.spyOn(Date, 'now').mockImplementation(() => wall() + 2 * 3_600_000);
    expect(Math.abs(ahead() - start - 2 * 3_600_000)).toBeLessThan(50);
    vi.restoreAllMocks();
    expect(Math.abs(ahead() - start)).toBeLessThan(50);
  });

  it('on any other clock: 0, whatever the wall clock does', () => {
    const wall = Date.now;
    vi.spyOn(Date, 'now').mockImplementation(() => wall() + 2 * 3_600_000);
    expect(wallAheadOf(systemClock)()).toBe(0);
    expect(wallAheadOf({ now: () => 5, sleep: systemClock.sleep })()).toBe(0);
  });
});

describe('wallTimeOf', () => {
  afterEach(() => vi.restoreAllMocks());

  it('a time on steadyClock as the wall clock reads it, a 2 h forward step since start included; on any other clock the time itself', () => {
    const wall = Date.now;
    vi.spyOn(Date, 'now').mockImplementation(() => wall() + 2 * 3_600_000);
    expect(Math.abs(wallTimeOf(steadyClock, steadyClock.now()) - Date.now())).toBeLessThan(50);
    expect(wallTimeOf(systemClock, 1_000)).toBe(1_000);
  });
});

describe('deadlineOn', () => {
  afterEach(() => vi.restoreAllMocks());

  it('a served call\'s wall-clock deadline as a time on the clock: on steadyClock the steps since start taken off, so as much time is left; Infinity for none', () => {
    const wall = Date.now;
    // The call came after a 2 h forward step, with 30 s to go by the (stepped) wall clock.
    vi.spyOn(Date, 'now').mockImplementation(() => wall() + 2 * 3_600_000);
    const deadline = new Date(Date.now() + 30_000);
    expect(Math.abs(deadlineOn(steadyClock, deadline) - steadyClock.now() - 30_000)).toBeLessThan(50);
    expect(deadlineOn(systemClock, deadline)).toBe(deadline.getTime());
    expect(deadlineOn(steadyClock, undefined)).toBe(Infinity);
  });
});
