/** Events remembered by default: more than a wave's worth of notices (maxInFlight is 1,000 by default), some 1 MB. */
const DEFAULT_MAX_EVENTS = 10_000;

/**
 * The ids of the last events this source settled for good (a run acted on them, or their group was already done with
 * them), so that a copy SQS hands out again (a delete that failed, SQS's own at-least-once delivery, or a message of
 * several events left for another's failed run) is not acted on a second time where no cooldown holds its group. Oldest forgotten first; not kept across a restart.
 */
export class ActedEvents {
  private readonly ids = new Set<string>();

  constructor(private readonly max = DEFAULT_MAX_EVENTS) {}

  /** True when the event `id` was settled here. */
  has(id: string): boolean {
    return this.ids.has(id);
  }

  /** True when every one of `ids` (at least one) was settled here. */
  all(ids: readonly string[]): boolean {
    return ids.length > 0 && ids.every((id) => this.ids.has(id));
  }

  /** Remembers `ids`, forgetting the oldest beyond the bound. */
  add(ids: readonly string[]): void {
    for (const id of ids) {
      // Deleted first, so a remembered id counts as the newest again (a Set keeps insertion order).
      this.ids.delete(id);
      this.ids.add(id);
    }
    for (const oldest of this.ids) {
      if (this.ids.size <= this.max) break;
      this.ids.delete(oldest);
    }
  }
}
