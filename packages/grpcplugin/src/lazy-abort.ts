/**
 * An abort whose AbortSignal is made only when someone reads it. An AbortController and its signal cost several µs in
 * Node 20, paid for every plugin call, and most handlers never read theirs. Who must hear of the abort whether or not
 * the signal was read (the server ending a call at its deadline) is told through {@link whenAborted}.
 */
export class LazyAbort {
  private controller: AbortController | undefined;
  private why: unknown;
  private done = false;
  private listener: ((reason: unknown) => void) | undefined;

  get aborted(): boolean {
    return this.done;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.done) this.controller.abort(this.why);
    }
    return this.controller.signal;
  }

  /** `listener` hears the abort once, before the signal's own listeners (at once, if it came already). One listener. */
  whenAborted(listener: (reason: unknown) => void): void {
    if (this.listener) throw new Error('LazyAbort tells one listener');
    if (this.done) listener(this.why);
    else this.listener = listener;
  }

  /** Aborts with `reason`; later aborts change nothing. */
  abort(reason: unknown): void {
    if (this.done) return;
    this.done = true;
    this.why = reason;
    const listener = this.listener;
    this.listener = undefined;
    listener?.(reason);
    this.controller?.abort(reason);
  }
}
