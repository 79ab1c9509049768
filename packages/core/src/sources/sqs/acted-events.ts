/** Events remembered by default: more than a wave's worth of notices (maxInFlight is 1,000 by default), some 1 MB. */
const DEFAULT_MAX_EVENTS = 10_000;

/** What is remembered of one event: settled for good as a whole, or by these flows only. */
interface Settled {
  readonly whole: boolean;
  readonly flows: ReadonlySet<string>;
}

const NO_FLOWS: ReadonlySet<string> = new Set();

/**
 * The ids of the last events this source settled for good (a run acted on them, or their group was already done with
 * them), and of those some of whose flows did while another's run failed, so that a copy SQS hands out again (a delete
 * that failed, SQS's own at-least-once delivery, or a message left for a failed run) is not acted on a second time by
 * a flow where no cooldown holds its group. Oldest forgotten first; not kept across a restart.
 */
export class ActedEvents {
  /** By event id, in the order remembered (a Map keeps insertion order): the oldest comes first. */
  private readonly events = new Map<string, Settled>();

  constructor(private readonly max = DEFAULT_MAX_EVENTS) {}

  /** True when the event `id` was settled here as a whole. */
  has(id: string): boolean {
    return this.events.get(id)?.whole === true;
  }

  /** True when every one of `ids` (at least one) was settled here as a whole. */
  all(ids: readonly string[]): boolean {
    return ids.length > 0 && ids.every((id) => this.has(id));
  }

  /** The flows that settled the event `id` for good here (none once it was settled as a whole: it goes to no flow). */
  flowsOf(id: string): ReadonlySet<string> {
    return this.events.get(id)?.flows ?? NO_FLOWS;
  }

  /** Remembers `ids` as settled as a whole, forgetting the oldest beyond the bound. */
  add(ids: readonly string[]): void {
    for (const id of ids) this.remember(id, { whole: true, flows: NO_FLOWS });
  }

  /** Remembers that `flows` (with those remembered before) settled the event `id` for good; nothing when none did. */
  addFlows(id: string, flows: ReadonlySet<string>): void {
    if (flows.size === 0 || this.has(id)) return;
    this.remember(id, { whole: false, flows: new Set([...this.flowsOf(id), ...flows]) });
  }

  private remember(id: string, settled: Settled): void {
    // Deleted first, so a remembered id counts as the newest again.
    this.events.delete(id);
    this.events.set(id, settled);
    for (const oldest of this.events.keys()) {
      if (this.events.size <= this.max) break;
      this.events.delete(oldest);
    }
  }
}
