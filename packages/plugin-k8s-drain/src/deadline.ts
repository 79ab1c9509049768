import { setMaxListeners } from 'node:events';

/** The reason a {@link Deadline}'s signal aborts when its time is up. */
export class DeadlineReachedError extends Error {
  override readonly name = 'DeadlineReachedError';
  constructor(readonly at: number) {
    super(`deadline ${new Date(at).toISOString()} reached`);
  }
}

/**
 * A point in time with an AbortSignal that fires at it, or earlier when the
 * parent signal (the gRPC call's) aborts, with the parent's reason.
 */
export class Deadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly onParentAbort: () => void;

  constructor(
    /** Epoch milliseconds. */
    readonly at: number,
    private readonly parent?: AbortSignal,
  ) {
    // Every eviction in flight races this signal: more than the default 10 listeners is expected.
    setMaxListeners(0, this.controller.signal);
    this.timer = setTimeout(() => this.abort(new DeadlineReachedError(at)), Math.max(0, at - Date.now()));
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
    return Math.max(0, this.at - Date.now());
  }

  /** Stops everything waiting on this deadline with `reason`. */
  abort(reason: unknown): void {
    this.controller.abort(reason);
  }

  /** Settles like `promise`, or rejects with the abort reason if the signal aborts first. */
  race<T>(promise: Promise<T>): Promise<T> {
    const signal = this.signal;
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /** Waits `ms`, or rejects with the abort reason if the signal aborts first. */
  sleep(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    return this.race(new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))).finally(() => clearTimeout(timer));
  }

  /** Releases the timer and the parent listener. */
  dispose(): void {
    clearTimeout(this.timer);
    this.parent?.removeEventListener('abort', this.onParentAbort);
  }
}
