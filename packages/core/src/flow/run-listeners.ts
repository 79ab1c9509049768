import type { RunListener, RunSettlement } from '../sources/event-sink.js';

/**
 * Listeners of the runs in progress, by group key. Shared by the engine a
 * reload replaces and its successor, as the group states are, so a run handed
 * over for its next try still tells its source how it ended. Held in memory
 * only: after a restart nobody is waiting.
 */
export class RunListeners {
  private readonly byKey = new Map<string, { listener: RunListener; firstCallAt?: number }>();

  /** Listens to the run of `key` that was just started. */
  listen(key: string, listener: RunListener): void {
    this.byKey.set(key, { listener });
  }

  /**
   * Listens to the run of `key` already in progress, when nobody does (a run
   * resumed from the journal): true when this listener now hears how it ends.
   */
  join(key: string, listener: RunListener): boolean {
    if (this.byKey.has(key)) return false;
    this.byKey.set(key, { listener });
    return true;
  }

  /** Notes that the run of `key` called a plugin at `at`; only its first call is kept, over all its tries. */
  called(key: string, at: number): void {
    const entry = this.byKey.get(key);
    if (entry) entry.firstCallAt ??= at;
  }

  /**
   * Forgets the listener of `key` and returns what tells it how its run ended.
   * Taken when the group is freed, before anything is awaited: a new run of
   * the group may start at once and listen in its place.
   */
  take(key: string): ((settlement: Omit<RunSettlement, 'firstCallAt'>) => void) | undefined {
    const entry = this.byKey.get(key);
    if (!entry) return undefined;
    this.byKey.delete(key);
    return (settlement) => entry.listener(entry.firstCallAt === undefined ? settlement : { ...settlement, firstCallAt: entry.firstCallAt });
  }

  /** Runs someone listens to. */
  get size(): number {
    return this.byKey.size;
  }
}
