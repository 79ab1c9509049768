import type { SharedRun } from '../state/run-state-store.js';
import type { FailedRunRecord, RunEnd } from './group-states.js';
import type { PluginCallRecord, RunOutcome } from './run-plugins.js';

/** A finished run, as the status API lists it. */
export interface FinishedRun extends RunEnd {
  groupKey: string;
  outcome: RunOutcome;
  calls: PluginCallRecord[];
  /** A run of another replica (or of this one's earlier process), as the store they share recorded its end. */
  replica?: string;
}

/** A run that failed for good as the journal kept it: listed as failed, its plugin calls not kept. */
export function failedRunOf({ key, phase: _failed, ...end }: FailedRunRecord): FinishedRun {
  return { ...end, groupKey: key, outcome: 'failed', calls: [] };
}

/** This process's runs (newest first) and those of the other processes sharing its store, newest first; their plugin calls are not shared. */
export function withSharedRuns(own: readonly FinishedRun[], shared: readonly SharedRun[]): FinishedRun[] {
  if (shared.length === 0) return [...own];
  const theirs = shared.map(({ key, ...end }): FinishedRun => ({ ...end, groupKey: key, calls: [] }));
  return [...own, ...theirs].sort((a, b) => b.finishedAt - a.finishedAt);
}

/** `run`'s end alone, as the journal keeps a run that failed for good. */
export function runEndOf(run: FinishedRun): RunEnd {
  const { groupKey: _groupKey, outcome: _outcome, calls: _calls, ...end } = run;
  return end;
}

/**
 * Finished runs kept to be found by their event: one per flow and notice of a wave of 5,000 nodes with two flows, read
 * by each node's watcher (`?eventId=`) long after the wave's last runs pushed it out of the {@link RecentRuns.list}.
 */
export const RUNS_KEPT_BY_EVENT = 10_000;

/**
 * The last `kept` finished runs, oldest dropped first (a fixed-size ring, so memory stays bounded): the newest `listed`
 * of them are what the status API lists; every one is found by its event's id.
 */
export class RecentRuns {
  private readonly ring: Array<FinishedRun | undefined>;
  /** Each event's runs in the ring, oldest first, with the count of runs added before each (their order across events). */
  private readonly byEvent = new Map<string, Array<{ run: FinishedRun; seq: number }>>();
  private added = 0;

  constructor(
    readonly listed: number,
    readonly kept = listed,
  ) {
    this.ring = new Array<FinishedRun | undefined>(Math.max(listed, kept));
  }

  add(run: FinishedRun): void {
    const size = this.ring.length;
    if (size === 0) return;
    const at = this.added % size;
    const dropped = this.ring[at];
    if (dropped) this.forget(dropped);
    this.ring[at] = run;
    const entry = { run, seq: this.added++ };
    const ofEvent = this.byEvent.get(run.eventId);
    if (ofEvent) ofEvent.push(entry);
    else this.byEvent.set(run.eventId, [entry]);
  }

  /** The newest `listed`, newest first. */
  list(): FinishedRun[] {
    const size = this.ring.length;
    const out: FinishedRun[] = [];
    for (let seq = this.added - 1; seq >= 0 && seq >= this.added - size && out.length < this.listed; seq--) out.push(this.ring[seq % size]!);
    return out;
  }

  /** The runs kept of these events, newest first (as added, like {@link list}). */
  ofEvents(events: ReadonlySet<string>): FinishedRun[] {
    const found = [...events].flatMap((id) => this.byEvent.get(id) ?? []);
    return found.sort((a, b) => b.seq - a.seq).map(({ run }) => run);
  }

  /** Drops the oldest run kept, the first of its event's. */
  private forget(run: FinishedRun): void {
    const ofEvent = this.byEvent.get(run.eventId);
    ofEvent?.shift();
    if (ofEvent?.length === 0) this.byEvent.delete(run.eventId);
  }
}
