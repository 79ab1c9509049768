import type { Clock } from '@hollowtrees/grpcplugin';

/** A {@link Clock} on real time that a test can move ahead at once. */
export interface JumpableClock extends Clock {
  /** Moves the clock `ms` ahead: every sleep whose end that passes ends now, as if the time had gone by. */
  jump(ms: number): void;
}

/**
 * The system clock, which a test moves ahead once what it waits for has happened: a call's deadline then comes at once
 * instead of being waited out, while everything else (backoffs, pods terminating) runs in real time, as on the system
 * clock. Unlike the manual clock, nothing waits for the test to move it.
 */
export function jumpableClock(): JumpableClock {
  let ahead = 0;
  const now = (): number => Date.now() + ahead;
  const sleepers = new Set<() => void>();
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
        sleepers.add(check);
        signal?.addEventListener('abort', onAbort, { once: true });
        check();
      });
    },
    jump(ms) {
      ahead += ms;
      for (const check of [...sleepers]) check();
    },
  };
}
