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

  /** Runs `call` once a slot is free for its class. */
  async run<T>(priority: CallPriority, call: () => Promise<T>): Promise<T> {
    if (this.inFlight >= this.limit) await new Promise<void>((resolve) => this.waiting[priority].push(resolve));
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

  private release(): void {
    for (const priority of ORDER) {
      const next = this.waiting[priority].shift();
      // The slot passes straight to the next caller: inFlight stays as it is.
      if (next) return next();
    }
    this.inFlight--;
  }
}
