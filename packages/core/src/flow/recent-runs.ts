import type { RunEnd } from './group-states.js';
import type { PluginCallRecord, RunOutcome } from './run-plugins.js';

/** A finished run, as the status API lists it. */
export interface FinishedRun extends RunEnd {
  groupKey: string;
  outcome: RunOutcome;
  calls: PluginCallRecord[];
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
