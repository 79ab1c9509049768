import type { Clock } from './clock.js';

/** A clock that moves only when a test calls {@link ManualClock.advance}. */
export interface ManualClock extends Clock {
  /** Moves time on by `ms` and wakes every sleep that is due. */
  advance(ms: number): void;
  /** Sleeps started and not yet woken or aborted. */
  readonly sleeping: number;
}

/**
 * A {@link Clock} for tests: time stands at `start` (default 2026-11-25T10:00:00Z) until
 * {@link ManualClock.advance} moves it, which wakes every sleep that has come due.
 *
 * @example
 * ```ts
 * import { manualClock } from '@hollowtrees/grpcplugin/testing';
 * const clock = manualClock();
 * const slept = clock.sleep(1_000);
 * clock.advance(1_000);
 * await slept;
 * ```
 */
export function manualClock(start = Date.parse('2026-11-25T10:00:00Z')): ManualClock {
  let now = start;
  const sleepers = new Set<{ at: number; wake: () => void }>();
  return {
    now: () => now,
    sleep(ms, signal) {
      return new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        const sleeper = { at: now + ms, wake: resolve };
        sleepers.add(sleeper);
        signal?.addEventListener('abort', () => {
          sleepers.delete(sleeper);
          reject(signal.reason);
        }, { once: true });
      });
    },
    advance(ms) {
      now += ms;
      for (const sleeper of [...sleepers]) {
        if (sleeper.at > now) continue;
        sleepers.delete(sleeper);
        sleeper.wake();
      }
    },
    get sleeping() {
      return sleepers.size;
    },
  };
}
