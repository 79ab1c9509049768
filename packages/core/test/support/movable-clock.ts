import { systemClock, type Clock } from '@hollowtrees/grpcplugin';

/**
 * The system clock, which a test moves ahead: what counts time on the clock
 * (cooldowns, sample ages) ends when the test says, never because a busy
 * machine paused the test; timers still run in real time.
 */
export function movableClock(): Clock & { advance(ms: number): void } {
  let ahead = 0;
  return { now: () => Date.now() + ahead, sleep: systemClock.sleep, advance: (ms) => (ahead += ms) };
}
