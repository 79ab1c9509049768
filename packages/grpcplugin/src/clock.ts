import { timerAt } from './timer-limit.js';

/**
 * Time as a dependency, so tests pin it instead of sleeping: core and the plugins read time and
 * wait through one of these ({@link systemClock} in production, `manualClock()` from
 * `@hollowtrees/grpcplugin/testing` in tests).
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      // Not one setTimeout: it ends a sleep longer than 2^31-1 ms (24.8 days) after 1 ms.
      const stop = timerAt(Date.now() + ms, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      const onAbort = (): void => {
        stop();
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};
