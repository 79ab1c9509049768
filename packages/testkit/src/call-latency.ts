/**
 * The delay a real API adds to every call (network round trip and service
 * time), for the stand-ins: without it, a drill against a stand-in on loopback
 * shows nothing of what serial calls cost against the real thing.
 */
export class CallLatency {
  private ms: number;

  constructor(ms = 0) {
    this.ms = CallLatency.checked(ms);
  }

  /** The delay now, in milliseconds. */
  get milliseconds(): number {
    return this.ms;
  }

  /** Changes the delay for the calls that arrive from now on. */
  set(ms: number): void {
    this.ms = CallLatency.checked(ms);
  }

  /** Resolves after the delay; at once (no timer) when it is 0. */
  wait(): Promise<void> {
    const ms = this.ms;
    return ms === 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms));
  }

  private static checked(ms: number): number {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`latency must be a non-negative number of milliseconds, got ${ms}`);
    return ms;
  }
}
