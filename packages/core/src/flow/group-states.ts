import type { CloudEvent } from '@hollowtrees/grpcplugin';
import { askedFor, type ClaimResult, type CutShortRun, type RunStateStore, type SharedRun, type StateBackend, type StatusView, type StoreDescription } from '../state/run-state-store.js';

/**
 * Where a group is in its life: a run queued or calling plugins, a failed run
 * waiting for its next try, or a cooldown after success.
 */
export type GroupPhase = 'running' | 'retrying' | 'cooling';

/** A step of a flow by what it calls, so a run finds its place in a flow whose plugins changed (a reload, a restart). */
export interface StepRef {
  plugin: string;
  /** Earlier steps that call the same plugin. */
  occurrence: number;
  /**
   * The plugins of the steps the run already passed, in order: what acted, so that no place found in
   * a changed flow calls one of them again. Absent in journals of format 3.
   */
  passed?: string[];
}

/**
 * What a run needs to go on where it stopped: after a restart, after a
 * shutdown that cut it short, or when its next try is due.
 */
export interface RunProgress {
  /** The event as its source made it. */
  event: CloudEvent;
  /** Attributes the plugins that already succeeded returned; the next plugin sees them merged into the labels. */
  attributes: Record<string, string>;
  /** When the event was received, ms since epoch. */
  receivedAt: number;
  /** Index in the flow's `plugins` of the plugin the run goes on with. */
  next: number;
  /** The step at `next` when the run stopped there: after a restart on changed plugins it goes on with that plugin, not with what is at `next` now. */
  at?: StepRef;
  /** 1 for the first try of the run, 2 for its first retry, ... */
  attempt: number;
  /** When a run waiting for its next try starts it, ms since epoch. */
  retryAt?: number;
  /** How many times a restart resumed the run. */
  restarts: number;
  /**
   * Set while the run waits in this process's queue, not yet claimed: it called no plugin here, so a restart that finds
   * it so resumes it without counting a restart (MAX_RESTARTS). Absent once claimed, and in journals before format 5.
   */
  queued?: true;
}

/** `run` once claimed: it may call a plugin from now on, and a restart that finds it so counts (see {@link RunProgress.queued}). */
export function claimedRun(run: RunProgress): RunProgress {
  if (!run.queued) return run;
  const { queued: _queued, ...claimed } = run;
  return claimed;
}

/** The state of one group. */
export interface GroupState {
  key: string;
  flow: string;
  phase: GroupPhase;
  /** Event that started the run. */
  eventId: string;
  /** When the run started (running, retrying) or finished (cooling), ms since epoch. */
  since: number;
  /** End of the cooldown, ms since epoch. */
  until?: number;
  /** Running and retrying only: what the run needs to go on, kept so it survives a restart. */
  run?: RunProgress;
  /** Set when another replica holds the group (kubernetes backend): its identity. This process runs nothing for it. */
  replica?: string;
}

/**
 * How a run ended: its flow and event, when the event was received and the run started and finished (ms since epoch),
 * and why it failed. The status API lists it (`FinishedRun`); a run that failed for good the journal keeps once its
 * group is free, listed again after a restart, so that whoever follows the event's runs (the node watcher, to send a
 * notice again) still learns that it failed.
 */
export interface RunEnd {
  flow: string;
  eventId: string;
  eventType: string;
  error?: string;
  receivedAt: number;
  startedAt: number;
  finishedAt: number;
}

/** The {@link RunEnd} of a run that failed for good, as a change of its group: the group is free. */
export type FailedRunRecord = { key: string; phase: 'failed' } & RunEnd;

/**
 * A change of one group, in the order it happened: its new state, `free` when it has none, `failed` when a run failed
 * for good (free too), or `started` when its queued run was claimed (a short line in the journal, rather than the run
 * and its event again).
 */
export type GroupChange = GroupState | { key: string; phase: 'free' } | FailedRunRecord | { key: string; phase: 'started' };

/** What {@link GroupStates.tryStart} decided. */
export type StartDecision = 'started' | 'held' | 'full';

/** A claim in memory: this process holds what `tryStart` started. */
export const HELD: ClaimResult = Object.freeze({ claim: 'held' });

/** A claim the store could not make (see {@link ClaimResult}): the run does not act, its sender is refused. */
export const UNAVAILABLE: ClaimResult = Object.freeze({ claim: 'unavailable' });

/** Least time between two sweeps forced by a full table, so a flood cannot make every event O(groups). */
const FULL_SWEEP_INTERVAL_MS = 1_000;

/**
 * The run state of every group, and the `memory` backend of
 * {@link RunStateStore}. `tryStart` is the atomic check-and-start:
 * JavaScript runs it to completion, so two copies of one alert can never both
 * see the group free. The other backends keep their local view in it.
 */
export class GroupStates implements RunStateStore {
  readonly backend: StateBackend = 'memory';
  readonly resumesRuns: boolean = false;
  readonly recordsSteps: boolean = false;
  readonly recovered: readonly GroupState[] = [];
  readonly recoveredFailures: readonly FailedRunRecord[] = [];
  private readonly groups = new Map<string, GroupState>();
  private lastFullSweep = -Infinity;

  /**
   * @param persist told of every change, in order (the state journal).
   * @param maxGroups groups held at most; beyond it a new group is refused (`full`).
   */
  constructor(
    private readonly persist: (change: GroupChange) => void = () => {},
    readonly maxGroups = Number.POSITIVE_INFINITY,
  ) {}

  /**
   * Marks the group running and says `started`, unless it is running, waiting
   * for a retry or still cooling down (`held`), or the table is full of live
   * groups (`full`).
   */
  tryStart(key: string, flow: string, run: RunProgress, now: number): StartDecision {
    if (this.holder(key, now)) return 'held';
    const current = this.groups.get(key);
    if (!current && this.groups.size >= this.maxGroups && !this.sweepWhenFull(now)) return 'full';
    this.set({ key, flow, phase: 'running', eventId: run.event.id, since: now, run });
    return 'started';
  }

  /** Records how far a running or retrying run got (what a restart resumes from). */
  progress(key: string, phase: 'running' | 'retrying', run: RunProgress): void {
    const current = this.groups.get(key);
    if (!current || current.phase === 'cooling') return;
    this.set({ ...current, phase, run });
  }

  /** The group's queued run was claimed here (see {@link claimedRun}): kept so, and the short `started` change persisted. */
  protected started(key: string): void {
    const current = this.groups.get(key);
    if (current?.phase !== 'running' || !current.run?.queued) return;
    this.groups.set(key, { ...current, run: claimedRun(current.run) });
    this.persist({ key, phase: 'started' });
  }

  /** After success: hold the group for `cooldownMs` (none when 0). */
  succeeded(key: string, now: number, cooldownMs: number): void {
    const current = this.groups.get(key);
    if (!current) return;
    if (cooldownMs <= 0) {
      this.release(key);
      return;
    }
    // Spelled out rather than spread: one object shape for every cooling group, the smallest one.
    this.set({ key: current.key, flow: current.flow, phase: 'cooling', eventId: current.eventId, since: now, until: now + cooldownMs });
  }

  /** After failure (`failure`, when it failed for good), or when the run never started: the group is free again, so the next re-send retries. */
  release(key: string, failure?: RunEnd): void {
    if (this.groups.delete(key)) this.persist(failure ? { key, phase: 'failed', ...failure } : { key, phase: 'free' });
  }

  /** Frees the group: nothing in memory outlives the process. */
  cutShort(key: string, _run: RunProgress): void {
    this.release(key);
  }

  /** Nothing is shared between processes here. */
  catchUp(_maxAgeMs: number, _view: StatusView): Promise<void> {
    return Promise.resolve();
  }

  /** Nothing is shared between processes here. */
  sharedRuns(): readonly SharedRun[] {
    return [];
  }

  /** Nothing is handed over between processes here. */
  onCutShort(_listener: (run: CutShortRun) => void): void {}

  /** Restores a state read back from disk, without writing it again unless `rewrite` (it was changed since it was read). */
  restore(state: GroupState, { rewrite } = { rewrite: false }): void {
    if (rewrite) this.set(state);
    else this.groups.set(state.key, state);
  }

  /** The state holding the group now (running, waiting for a retry, or cooling down), if any. */
  holder(key: string, now: number): GroupState | undefined {
    const state = this.groups.get(key);
    return state !== undefined && (state.phase !== 'cooling' || state.until! > now) ? state : undefined;
  }

  /** The state of one group, if it has one. */
  get(key: string): GroupState | undefined {
    return this.groups.get(key);
  }

  /** In this process alone a hold cannot be lost. */
  holdLost(_key: string): AbortSignal | undefined {
    return undefined;
  }

  /** In this process alone a hold cannot lapse. */
  async checkHold(_key: string): Promise<void> {}

  /** In memory the group is this process's once `tryStart` said so. */
  claim(_key: string, _run: RunProgress): Promise<ClaimResult> {
    return Promise.resolve(HELD);
  }

  /** Nothing to save. */
  commit(): Promise<boolean> {
    return Promise.resolve(true);
  }

  /** No claim can fail in memory: any mark will do. */
  mark(): number {
    return 0;
  }

  get durable(): boolean {
    return true;
  }

  describe(): StoreDescription {
    return { backend: this.backend, survivesRestart: this.backend !== 'memory', writable: this.durable };
  }

  /** Nothing to let go of. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Forgets cooldowns that are over; returns how many. Not journalled: a reader drops them by time too. */
  sweep(now: number): number {
    let removed = 0;
    for (const [key, state] of this.groups) {
      if (state.phase === 'cooling' && state.until! <= now) {
        this.groups.delete(key);
        removed++;
      }
    }
    return removed;
  }

  /** Groups still cooling down, per flow. */
  coolingByFlow(now: number): Map<string, number> {
    const counts = new Map<string, number>();
    for (const state of this.groups.values()) {
      if (state.phase === 'cooling' && state.until! > now) counts.set(state.flow, (counts.get(state.flow) ?? 0) + 1);
    }
    return counts;
  }

  /**
   * Every live state (cooldowns that are over left out); given `events`, those of these events alone, picked as the
   * table is walked: a node watcher's read of its notice's groups copies no table of 100,000 groups.
   */
  list(now: number, events?: ReadonlySet<string>): GroupState[] {
    const live: GroupState[] = [];
    for (const state of this.groups.values()) {
      if ((state.phase !== 'cooling' || state.until! > now) && askedFor(events, state.eventId)) live.push(state);
    }
    return live;
  }

  /** Groups held in memory, cooldowns that are over but not yet swept included. */
  get size(): number {
    return this.groups.size;
  }

  private set(state: GroupState): void {
    this.groups.set(state.key, state);
    this.persist(state);
  }

  /** Sweeps at most once a second when the table is full; true when that made room. */
  private sweepWhenFull(now: number): boolean {
    if (now - this.lastFullSweep < FULL_SWEEP_INTERVAL_MS) return false;
    this.lastFullSweep = now;
    this.sweep(now);
    return this.groups.size < this.maxGroups;
  }
}
