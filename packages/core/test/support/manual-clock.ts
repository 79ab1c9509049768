import type { Clock } from '../../src/clock.js';

/** A clock that moves only when a test calls {@link ManualClock.advance}. */
export interface ManualClock extends Clock {
  /** Moves time on by `ms` and wakes every sleep that is due. */
  advance(ms: number): void;
  /** Sleeps started and not yet woken or aborted. */
  readonly sleeping: number;
}

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
