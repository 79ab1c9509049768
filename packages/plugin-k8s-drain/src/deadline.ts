import { setMaxListeners } from 'node:events';
import { steadyClock, wallTimeOf, type Clock } from '@hollowtrees/grpcplugin';

/** The reason a {@link Deadline}'s signal aborts when its time is up. */
export class DeadlineReachedError extends Error {
  override readonly name: string = 'DeadlineReachedError';
  /** @param at when, on the wall clock (see {@link wallTimeOf}). */
  constructor(readonly at: number) {
    super(`deadline ${new Date(at).toISOString()} reached`);
  }
}

/**
 * The reason a pool drain's work aborts when a resolution stops it. A kind of
 * {@link DeadlineReachedError}, so every step treats it as its time being up:
 * evictions not yet accepted are left, not failed.
 */
export class DrainStoppedError extends DeadlineReachedError {
  override readonly name: string = 'DrainStoppedError';
  constructor(at: number) {
    super(at);
    this.message = `drain stopped at ${new Date(at).toISOString()}: the price surge resolved`;
  }
}

/**
 * A point in time with an AbortSignal that fires at it, or earlier when the
 * parent signal (the gRPC call's) aborts, with the parent's reason. Time is
 * read and waited for on `clock`: on `steadyClock` (the default) a step of the wall clock during a drain neither
 * ends its waits early nor stretches them.
 */
export class Deadline {
  private readonly controller = new AbortController();
  /** Ends the wait for `at` once the deadline is disposed of. */
  private readonly disposed = new AbortController();
  private readonly onParentAbort: () => void;

  constructor(
    /** Epoch milliseconds, on `clock`. */
    readonly at: number,
    private readonly parent?: AbortSignal,
    private readonly clock: Clock = steadyClock,
  ) {
    // Every eviction in flight races this signal: more than the default 10 listeners is expected.
    setMaxListeners(0, this.controller.signal);
    // However far off: the clock's sleep outlasts what one timer holds (a stream call's deadline may be 49.7 days out).
    clock.sleep(Math.max(0, at - clock.now()), this.disposed.signal).then(() => this.abort(new DeadlineReachedError(wallTimeOf(clock, at))), () => {});
    this.onParentAbort = () => this.abort(parent?.reason);
    if (parent?.aborted) this.onParentAbort();
    else parent?.addEventListener('abort', this.onParentAbort, { once: true });
  }

  /** Aborts when the time is up, the parent aborts, or {@link abort} is called. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Milliseconds left, 0 once passed. */
  remainingMs(): number {
    return Math.max(0, this.at - this.clock.now());
  }

  /** Stops everything waiting on this deadline with `reason`. */
  abort(reason: unknown): void {
    this.controller.abort(reason);
  }

  /** Settles like `promise`, or rejects with the abort reason if the signal aborts first. */
  race<T>(promise: Promise<T>): Promise<T> {
    const signal = this.signal;
    if (signal.aborted) {
      // Already started by the caller: its failure is not this race's answer, and must not go unhandled.
      promise.catch(() => {});
      return Promise.reject(signal.reason as Error);
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /** Waits `ms`, or rejects with the abort reason if the signal aborts first. */
  sleep(ms: number): Promise<void> {
    return this.clock.sleep(ms, this.signal);
  }

  /** Releases the timer and the parent listener. */
  dispose(): void {
    this.disposed.abort();
    this.parent?.removeEventListener('abort', this.onParentAbort);
  }
}
