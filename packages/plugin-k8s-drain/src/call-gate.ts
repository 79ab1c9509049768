/** What a Kubernetes call is for; the gate serves the classes in this order. */
export type CallPriority = 'cordon' | 'drain' | 'event';

const ORDER: readonly CallPriority[] = ['cordon', 'drain', 'event'];

/** How a {@link CallGate} shares its slots; every field has a default. */
export interface CallGateOptions {
  /** Drain and Event calls in flight while a wave's nodes are still being cordoned. Default an eighth of the limit (at least 1). */
  whileCordoning?: number;
  /** How long after the last drain started the gate still counts as cordoning. Default 250 ms. */
  settleMs?: number;
  /** Milliseconds clock. Default `performance.now`. */
  now?: () => number;
}

/**
 * A cap on the Kubernetes calls in flight across every drain of the process,
 * so a wave of a thousand nodes does not open ten thousand connections at
 * once. Calls beyond the cap wait; a freed slot goes to the most urgent class
 * waiting: cordons (a node still taking pods is the worst case) before
 * evictions and listings, Kubernetes Events last.
 *
 * Cordons first holds for the whole wave, not only in the queue: while drains
 * are starting (see {@link cordoning}), and `settleMs` after the last one
 * started, evictions and Events may hold only `whileCordoning` slots, so the
 * process (and the CPU it shares) answers the wave's arrivals and cordons
 * before it works through ten thousand evictions.
 */
export class CallGate {
  private inFlight = 0;
  private lowInFlight = 0;
  private cordonsPending = 0;
  private lastCordonStart = Number.NEGATIVE_INFINITY;
  private settleTimer: NodeJS.Timeout | undefined;
  private readonly whileCordoning: number;
  private readonly settleMs: number;
  private readonly now: () => number;
  private readonly waiting: Record<CallPriority, Array<() => void>> = { cordon: [], drain: [], event: [] };

  constructor(
    readonly limit: number,
    options: CallGateOptions = {},
  ) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`the in-flight limit must be an integer >= 1, got ${limit}`);
    this.whileCordoning = options.whileCordoning ?? Math.max(1, Math.floor(limit / 8));
    this.settleMs = options.settleMs ?? 250;
    this.now = options.now ?? (() => performance.now());
  }

  /**
   * Tells the gate a drain has started and will cordon its node; call the
   * returned function once it has (or has given up).
   */
  cordoning(): () => void {
    this.cordonsPending++;
    this.lastCordonStart = this.now();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.cordonsPending--;
      this.pump();
    };
  }

  /** Runs `call` once a slot is free for its class. */
  async run<T>(priority: CallPriority, call: () => Promise<T>): Promise<T> {
    if (this.admits(priority)) this.take(priority);
    else await new Promise<void>((resolve) => this.waiting[priority].push(resolve));
    try {
      return await call();
    } finally {
      this.inFlight--;
      if (priority !== 'cordon') this.lowInFlight--;
      this.pump();
    }
  }

  /** Calls waiting for a slot, by class. */
  queued(): Record<CallPriority, number> {
    return { cordon: this.waiting.cordon.length, drain: this.waiting.drain.length, event: this.waiting.event.length };
  }

  private cordonPhase(): boolean {
    return this.cordonsPending > 0 || this.now() - this.lastCordonStart < this.settleMs;
  }

  private admits(priority: CallPriority): boolean {
    if (this.inFlight >= this.limit) return false;
    return priority === 'cordon' || !this.cordonPhase() || this.lowInFlight < this.whileCordoning;
  }

  private take(priority: CallPriority): void {
    this.inFlight++;
    if (priority !== 'cordon') this.lowInFlight++;
  }

  /** Starts waiting calls while their class is admitted, most urgent first. */
  private pump(): void {
    for (const priority of ORDER) {
      while (this.waiting[priority].length > 0 && this.admits(priority)) {
        this.take(priority);
        this.waiting[priority].shift()!();
      }
    }
    this.pumpWhenSettled();
  }

  /** Once the cordon phase is over, the held calls may go: look again when it ends. */
  private pumpWhenSettled(): void {
    if (this.settleTimer || this.cordonsPending > 0 || (this.waiting.drain.length === 0 && this.waiting.event.length === 0)) return;
    const wait = this.lastCordonStart + this.settleMs - this.now();
    if (wait <= 0) return;
    this.settleTimer = setTimeout(() => {
      this.settleTimer = undefined;
      this.pump();
    }, wait);
    this.settleTimer.unref();
  }
}
