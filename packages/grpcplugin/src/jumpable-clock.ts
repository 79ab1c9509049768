import type { Clock } from './clock.js';

/** A {@link Clock} on real time that a test can move ahead at once. */
export interface JumpableClock extends Clock {
  /** Moves the clock `ms` ahead: every sleep whose end that passes ends now, as if the time had gone by. */
  jump(ms: number): void;
  /** How long until the first sleep still running ends, in ms on this clock; undefined when none runs. */
  nextWakeIn(): number | undefined;
}

/**
 * The system clock, which a test moves ahead once what it waits for has happened: a call's deadline then comes at once
 * instead of being waited out, while everything else (backoffs, pods terminating) runs in real time, as on the system
 * clock. Unlike {@link manualClock}, nothing waits for the test to move it.
 *
 * @example
 * ```ts
 * import { jumpableClock } from '@hollowtrees/grpcplugin/testing';
 * const clock = jumpableClock();
 * const slept = clock.sleep(60_000);
 * clock.jump(clock.nextWakeIn() ?? 0);
 * await slept;
 * ```
 */
export function jumpableClock(): JumpableClock {
  let ahead = 0;
  const now = (): number => Date.now() + ahead;
  const sleepers = new Map<() => void, number>();
  return {
    now,
    sleep(ms, signal) {
      const at = now() + ms;
      return new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason as Error);
        let timer: NodeJS.Timeout | undefined;
        const end = (settle: () => void): void => {
          clearTimeout(timer);
          sleepers.delete(check);
          signal?.removeEventListener('abort', onAbort);
          settle();
        };
        const onAbort = (): void => end(() => reject(signal!.reason as Error));
        // Timers hold at most 2^31-1 ms: a far end is checked again when that one fires.
        const check = (): void => {
          clearTimeout(timer);
          const left = at - now();
          if (left <= 0) end(resolve);
          else timer = setTimeout(check, Math.min(left, 2 ** 31 - 1));
        };
        sleepers.set(check, at);
        signal?.addEventListener('abort', onAbort, { once: true });
        check();
      });
    },
    jump(ms) {
      ahead += ms;
      for (const check of [...sleepers.keys()]) check();
    },
    nextWakeIn() {
      return sleepers.size === 0 ? undefined : Math.max(0, Math.min(...sleepers.values()) - now());
    },
  };
}
