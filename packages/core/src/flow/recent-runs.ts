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

/** The last N finished runs, oldest dropped first: a fixed-size ring, so memory stays bounded. */
export class RecentRuns {
  private readonly ring: Array<FinishedRun | undefined>;
  private next = 0;

  constructor(readonly capacity: number) {
    this.ring = new Array<FinishedRun | undefined>(capacity);
  }

  add(run: FinishedRun): void {
    if (this.capacity === 0) return;
    this.ring[this.next] = run;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Newest first. */
  list(): FinishedRun[] {
    const out: FinishedRun[] = [];
    for (let i = 1; i <= this.capacity; i++) {
      const run = this.ring[(this.next - i + this.capacity) % this.capacity];
      if (run) out.push(run);
    }
    return out;
  }
}
