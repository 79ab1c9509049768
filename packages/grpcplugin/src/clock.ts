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

/** A clock reading `now`, whose sleeps end when `now` reaches their end. */
function clockOn(now: () => number): Clock {
  return {
    now,
    sleep: (ms, signal) =>
      new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        // Not one setTimeout: it ends a sleep longer than 2^31-1 ms (24.8 days) after 1 ms.
        const stop = timerAt(now() + ms, () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        }, now);
        const onAbort = (): void => {
          stop();
          reject(signal!.reason);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
      }),
  };
}

/** The real clock: the system's wall clock, which a step of it (NTP, `date -s`) moves at once. */
export const systemClock: Clock = clockOn(() => Date.now());

/**
 * A clock that a step of the system's wall clock does not move: the wall time when this process
 * started, plus the time since on a monotonic clock. Within one process a cooldown or a wait
 * measured on it lasts what it says, whatever the wall clock does meanwhile; its times differ from
 * the wall clock by every step since the start (and on Linux by the time a suspended VM slept).
 * Not for times another process reads against its own clock.
 */
// Floored: whole ms, as Date.now() reads, for durations and times logged and written.
export const steadyClock: Clock = clockOn(() => Math.floor(performance.timeOrigin + performance.now()));
