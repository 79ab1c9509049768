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

/**
 * Below this, the wall clock's lead on {@link steadyClock} is read as noise, not a step: the two are read one after
 * the other and each floored, so they differ by a ms now and then.
 */
const STEP_TOLERANCE_MS = 1_000;
/** A reading whose two reads of the steady clock, either side of the wall clock's, lie further apart than this was preempted (GC, a starved CPU): it is not used. */
const READING_MS = 20;
/** The wall clock's lead on {@link steadyClock} as last taken for a step. */
let wallSteps = 0;

/** How far the wall clock is ahead of {@link steadyClock}: changed only by a step of more than {@link STEP_TOLERANCE_MS}. */
function stepsOfWallClock(): number {
  const before = steadyClock.now();
  const wall = Date.now();
  const after = steadyClock.now();
  const seen = wall - after;
  if (after - before <= READING_MS && Math.abs(seen - wallSteps) > STEP_TOLERANCE_MS) wallSteps = seen;
  return wallSteps;
}

/**
 * How far the wall clock is ahead of `clock` now, for times that leave the process (written where another
 * process reads them on its wall clock, shown to people) or come into it from elsewhere (a deadline, a
 * Lease's cooldown end): a time `t` on `clock` is `t + ahead()` on the wall clock. On {@link steadyClock}: the
 * steps of the wall clock since this process started (a step under 1 s is taken for none, so that a time
 * written and read back within the process comes back the same); on any other clock (the system's, a test's): 0.
 */
export function wallAheadOf(clock: Clock): () => number {
  return clock === steadyClock ? stepsOfWallClock : () => 0;
}

/** `time` on `clock` as the wall clock reads it, for times that leave the process (see {@link wallAheadOf}): on {@link steadyClock} the steps of the wall clock since start are added. */
export function wallTimeOf(clock: Clock, time: number): number {
  return time + wallAheadOf(clock)();
}

/**
 * A served call's deadline (a wall-clock `Date`, as the SDK hands it) as a time on `clock`, Infinity for none: on
 * {@link steadyClock} the steps of the wall clock since start are taken off, so the time left to it is what the caller gave.
 */
export function deadlineOn(clock: Clock, deadline: Date | undefined): number {
  return deadline === undefined ? Infinity : deadline.getTime() - wallAheadOf(clock)();
}
