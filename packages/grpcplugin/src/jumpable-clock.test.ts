import { describe, expect, it } from 'vitest';
import { jumpableClock } from './jumpable-clock.js';

describe('jumpableClock', () => {
  it('ends a sleep at once when a jump passes its end, and says how far off the first running sleep ends', async () => {
    const clock = jumpableClock();
    expect(clock.nextWakeIn()).toBeUndefined();
    const start = clock.now();
    const long = clock.sleep(60_000);
    const longer = clock.sleep(120_000);
    expect(clock.nextWakeIn()).toBeGreaterThan(59_000);
    clock.jump(clock.nextWakeIn()!);
    await long;
    expect(clock.now() - start).toBeGreaterThanOrEqual(60_000);
    expect(clock.nextWakeIn()).toBeGreaterThan(59_000);
    clock.jump(60_000);
    await longer;
    expect(clock.nextWakeIn()).toBeUndefined();
  });

  it('runs on real time without a jump, and an aborted sleep is no longer waited for', async () => {
    const clock = jumpableClock();
    const at = Date.now();
    await clock.sleep(20);
    expect(Date.now() - at).toBeGreaterThanOrEqual(15);
    const cancel = new AbortController();
    const slept = clock.sleep(60_000, cancel.signal);
    cancel.abort(new Error('stop'));
    await expect(slept).rejects.toThrow('stop');
    expect(clock.nextWakeIn()).toBeUndefined();
  });
});
