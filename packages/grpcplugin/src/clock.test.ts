import { describe, expect, it } from 'vitest';
import { systemClock } from './clock.js';
import { MAX_TIMER_MS } from './timer-limit.js';

describe('systemClock.sleep', () => {
  it('waits out a sleep longer than one timer holds (2^31-1 ms, 24.8 days) instead of ending it at once', async () => {
    // setTimeout fires anything longer after 1 ms: a handler sleeping until a stream call's deadline (timeout_ms up to 49.7 days) woke at once.
    const stop = new AbortController();
    const slept = systemClock.sleep(MAX_TIMER_MS + 1_000, stop.signal).then(() => 'woke', () => 'aborted');
    await new Promise((resolve) => setTimeout(resolve, 100));
    stop.abort();
    expect(await slept).toBe('aborted');
  });

  it('wakes after a short sleep, and an abort before it ends rejects with the signal reason', async () => {
    await expect(systemClock.sleep(5)).resolves.toBeUndefined();
    const stop = new AbortController();
    const slept = systemClock.sleep(60_000, stop.signal);
    stop.abort(new Error('stopped'));
    await expect(slept).rejects.toThrow('stopped');
  });
});
