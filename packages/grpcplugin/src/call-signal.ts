import { cancelReason } from './cancel-reason.js';
import { LazyAbort } from './lazy-abort.js';
import { timerAt } from './timer-limit.js';

/**
 * The AbortSignal a served call hands its handler. It aborts once, while the call is
 * pending: at the call's deadline (DEADLINE_EXCEEDED) or when the call is cancelled
 * (CANCELLED, or DEADLINE_EXCEEDED when that is close to the deadline: see
 * {@link cancelReason}). Once the handler settled, nothing aborts it. The signal is made only if read
 * (see {@link LazyAbort}).
 */
export class CallSignal {
  private readonly call = new LazyAbort();
  private settled = false;
  private stopTimer: (() => void) | undefined;

  /** @param deadlineMs The call's deadline in epoch ms, Infinity for none. */
  constructor(private readonly deadlineMs: number) {}

  get signal(): AbortSignal {
    return this.call.signal;
  }

  /** True once the call was cancelled or its deadline passed, whether or not the signal was read. */
  get aborted(): boolean {
    return this.call.aborted;
  }

  /** `listener` hears the cancel or the deadline once, with its reason, before the handler's signal does. */
  whenCancelled(listener: (reason: unknown) => void): void {
    this.call.whenAborted(listener);
  }

  /** The deadline the handler sees. */
  get deadline(): Date | undefined {
    return Number.isFinite(this.deadlineMs) ? new Date(this.deadlineMs) : undefined;
  }

  /**
   * Aborts at the deadline by a timer of its own. A unary call needs none (grpc-js
   * cancels it at its deadline); a call on a stream has no grpc-js deadline.
   */
  armDeadline(): void {
    if (!Number.isFinite(this.deadlineMs) || this.settled) return;
    // A stream call's timeout_ms goes up to 2^32-1 ms (49.7 days), past what one timer holds.
    this.stopTimer = timerAt(this.deadlineMs, () => this.cancel());
  }

  /** The call was cancelled, or its stream went away. */
  cancel(): void {
    if (!this.settled) this.call.abort(cancelReason(this.deadlineMs, Date.now()));
  }

  /** The handler settled: the call is over and the signal stays as it is. */
  settle(): void {
    this.settled = true;
    this.stopTimer?.();
  }
}
