/**
 * A cap on the calls in flight to one API across a process, so a wave of a
 * thousand nodes does not open a thousand connections (or meet the API
 * server's API Priority and Fairness with a thousand requests at once, which
 * it answers 429). Calls beyond the cap wait; when one finishes, the next
 * waiting call of the most urgent class goes. The classes, most urgent first,
 * are the caller's: the drain plugin serves cordons before evictions and
 * Events, core serves its Lease writes before its listings.
 */
export class CallGate<P extends string> {
  private inFlight = 0;
  /** Waiting calls by class, in the order given: most urgent first. */
  private readonly waiting: ReadonlyMap<P, Array<() => void>>;

  /**
   * @param limit calls in flight at most, a whole number of at least 1.
   * @param order the classes of calls, most urgent first.
   */
  constructor(
    readonly limit: number,
    order: readonly P[],
  ) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`the in-flight limit must be an integer >= 1, got ${limit}`);
    this.waiting = new Map(order.map((priority) => [priority, []]));
  }

  /**
   * Runs `call` once a slot is free for its class. When `signal` aborts first,
   * the call leaves the queue unsent and this rejects with the signal's reason:
   * a caller that has answered (cancelled, or out of time) must not write later.
   */
  async run<T>(priority: P, call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    if (!this.waiting.has(priority)) throw new RangeError(`no call class "${priority}" in this gate (${[...this.waiting.keys()].join(', ')})`);
    if (this.inFlight >= this.limit) await this.slot(priority, signal);
    else this.inFlight++;
    try {
      return await call();
    } finally {
      this.release();
    }
  }

  /** Calls waiting for a slot, by class. */
  queued(): Record<P, number> {
    return Object.fromEntries([...this.waiting].map(([priority, queue]) => [priority, queue.length])) as Record<P, number>;
  }

  /** Waits for a slot handed over by {@link release}, or for `signal`, whichever comes first. */
  private slot(priority: P, signal: AbortSignal | undefined): Promise<void> {
    const queue = this.waiting.get(priority)!;
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
    for (const queue of this.waiting.values()) {
      const next = queue.shift();
      // The slot passes straight to the next caller: inFlight stays as it is.
      if (next) return next();
    }
    this.inFlight--;
  }
}
