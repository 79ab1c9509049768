/** What a Kubernetes call is for; the gate serves the classes in this order. */
export type CallPriority = 'cordon' | 'drain' | 'event';

const ORDER: readonly CallPriority[] = ['cordon', 'drain', 'event'];

/**
 * A cap on the Kubernetes calls in flight across every drain of the process,
 * so a wave of a thousand nodes does not open ten thousand connections at
 * once. Calls beyond the cap wait; when one finishes, the next waiting call
 * of the most urgent class goes: cordons (a node still taking pods is the
 * worst case) before evictions and listings, Kubernetes Events last.
 */
export class CallGate {
  private inFlight = 0;
  private readonly waiting: Record<CallPriority, Array<() => void>> = { cordon: [], drain: [], event: [] };

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`the in-flight limit must be an integer >= 1, got ${limit}`);
  }

  /**
   * Runs `call` once a slot is free for its class. When `signal` aborts first,
   * the call leaves the queue unsent and this rejects with the signal's reason:
   * a drain that has answered (cancelled, or out of time) must not write later.
   */
  async run<T>(priority: CallPriority, call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    if (this.inFlight >= this.limit) await this.slot(priority, signal);
    else this.inFlight++;
    try {
      return await call();
    } finally {
      this.release();
    }
  }

  /** Calls waiting for a slot, by class. */
  queued(): Record<CallPriority, number> {
    return { cordon: this.waiting.cordon.length, drain: this.waiting.drain.length, event: this.waiting.event.length };
  }

  /** Waits for a slot handed over by {@link release}, or for `signal`, whichever comes first. */
  private slot(priority: CallPriority, signal: AbortSignal | undefined): Promise<void> {
    const queue = this.waiting[priority];
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        queue.splice(queue.indexOf(take), 1);
        reject(signal?.reason);
      };
      const take = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      queue.push(take);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private release(): void {
    for (const priority of ORDER) {
      const next = this.waiting[priority].shift();
      // The slot passes straight to the next caller: inFlight stays as it is.
      if (next) return next();
    }
    this.inFlight--;
  }
}
