/**
 * Bytes of events held by runs that are queued, running or waiting for a
 * retry, per flow and in all. Shared by the engine a reload replaces and its
 * successor, so the global bound holds across a reload.
 */
export class HeldBytes {
  private all = 0;
  private readonly perFlow = new Map<string, number>();

  /** @param limit bytes held at most over all flows; a reload may change it. */
  constructor(public limit = Number.POSITIVE_INFINITY) {}

  /** Holds `bytes` for `flow` unless that would pass the flow's or the global limit. */
  tryHold(flow: string, flowLimit: number, bytes: number): boolean {
    if (this.all + bytes > this.limit || this.of(flow) + bytes > flowLimit) return false;
    this.hold(flow, bytes);
    return true;
  }

  /** Holds `bytes` whatever the limits: for a run that was already accepted (resumed, retried). */
  hold(flow: string, bytes: number): void {
    this.all += bytes;
    this.perFlow.set(flow, this.of(flow) + bytes);
  }

  release(flow: string, bytes: number): void {
    this.all -= bytes;
    this.perFlow.set(flow, this.of(flow) - bytes);
  }

  /** Bytes held for one flow. */
  of(flow: string): number {
    return this.perFlow.get(flow) ?? 0;
  }

  /** Bytes held over all flows. */
  get total(): number {
    return this.all;
  }
}
