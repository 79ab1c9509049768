import type { CloudEvent } from '@hollowtrees/grpcplugin';
import type { RunListener, RunSettlement } from '../sources/event-sink.js';

interface Entry {
  listener: RunListener;
  /** The event of the run listened to; none for a run joined after a restart, whichever it is. */
  run?: CloudEvent;
  firstCallAt?: number;
  /** Listeners of other events deduplicated against this run while it was in progress (see {@link RunListeners.follow}). */
  followers?: RunListener[];
}

/**
 * Listeners of the runs in progress, by group key, each tied to its run by the
 * run's event (the same object through every try and a reload's hand-over).
 * Shared by the engine a reload replaces and its successor, as the group states
 * are, so a run handed over for its next try still tells its source how it
 * ended. Held in memory only: after a restart nobody is waiting.
 */
export class RunListeners {
  private readonly byKey = new Map<string, Entry>();
  /**
   * Listeners of runs whose group was freed while they still waited in the queue (a Lease claim
   * refused), and a newer run of the group started: each still hears how its own run ended.
   */
  private readonly displaced = new Map<CloudEvent, Entry>();

  /** Listens to the run of `key` that was just started for `run`. */
  listen(key: string, run: CloudEvent, listener: RunListener): void {
    const previous = this.byKey.get(key);
    if (previous?.run) this.displaced.set(previous.run, previous);
    this.byKey.set(key, { listener, run });
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

  /**
   * Listens, besides its own listener, to the run of `key` in progress for
   * another event of its group: true when `listener` now hears how that run
   * ends. It never acted itself, so a success reaches it as `deduplicated`.
   */
  follow(key: string, listener: RunListener): boolean {
    const entry = this.byKey.get(key);
    if (!entry) return false;
    (entry.followers ??= []).push(listener);
    return true;
  }

  /** Notes that the run of `key` for `run` called a plugin at `at`; only its first call is kept, over all its tries. */
  called(key: string, run: CloudEvent, at: number): void {
    const entry = this.entry(key, run);
    if (entry) entry.firstCallAt ??= at;
  }

  /**
   * Forgets the listener of the run of `key` for `run` and returns what tells
   * it how that run ended. Taken when the group is freed, before anything is
   * awaited: a new run of the group may start at once and listen in its place.
   */
  take(key: string, run: CloudEvent | undefined): ((settlement: Omit<RunSettlement, 'firstCallAt'>) => void) | undefined {
    const entry = this.entry(key, run);
    if (!entry) return undefined;
    if (this.byKey.get(key) === entry) this.byKey.delete(key);
    else this.displaced.delete(run!);
    return (settlement) => {
      entry.listener(entry.firstCallAt === undefined ? settlement : { ...settlement, firstCallAt: entry.firstCallAt });
      // No firstCallAt: the run's first call may come before a follower's event was received.
      for (const follower of entry.followers ?? []) follower(settlement.outcome === 'succeeded' ? { ...settlement, outcome: 'deduplicated' } : settlement);
    };
  }

  /** Runs someone listens to. */
  get size(): number {
    return this.byKey.size + this.displaced.size;
  }

  private entry(key: string, run: CloudEvent | undefined): Entry | undefined {
    const current = this.byKey.get(key);
    if (current && (current.run === undefined || current.run === run)) return current;
    return run === undefined ? undefined : this.displaced.get(run);
  }
}
