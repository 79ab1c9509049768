import type { FailedRunRecord, GroupState, RunEnd, RunProgress, StartDecision } from '../flow/group-states.js';
import type { LeasePlace } from './lease-record.js';

/** Where run state is kept: this process only, a journal on local disk, or Leases shared by every replica. */
export type StateBackend = 'memory' | 'file' | 'kubernetes';

/** What a status read shows (see {@link RunStateStore.catchUp}): the groups held, or the runs that ended. */
export type StatusView = 'groups' | 'runs';

/** What cannot be done while a backend's store is not durable, for the sender's 503 `state_unavailable`. */
export const UNAVAILABLE_BECAUSE: Readonly<Record<StateBackend, string>> = Object.freeze({
  memory: 'run state cannot be kept right now',
  file: 'run state cannot be saved to disk right now',
  kubernetes: 'run state cannot be checked with the Kubernetes API server right now',
});

/**
 * What became of a run's claim on its group in the store every replica
 * shares, decided before its first plugin call:
 * - `held`: this process holds the group; the run may act.
 * - `taken`: another replica holds it (running or cooling down); the run must
 *   not act, and the event counts as deduplicated.
 * - `unavailable`: the store could not be asked, or not record the run; the run must not act, the
 *   group is freed, and the sender must be refused so that it sends again.
 */
export type Claim = ClaimResult['claim'];
/** The status API's view of the store. */
export interface StoreDescription {
  backend: StateBackend;
  /** Shared backends: the name this replica holds groups under. */
  identity?: string;
  /**
   * Whether run state outlives this process: false for `memory`. Apart from `writable`, which is true
   * in memory too, so that no reader takes "can save" for "survives a restart".
   */
  survivesRestart: boolean;
  /** False while the store cannot be written or reached (`hollowtrees_state_durable` 0: readiness false, events 503). */
  writable: boolean;
}

/** Whether a status read of `events` (`?eventId=`) asks for `eventId`: any one, when it names none. */
export function askedFor(events: ReadonlySet<string> | undefined, eventId: string): boolean {
  return !events || events.has(eventId);
}

/**
 * A run that ended on another replica sharing the store, or on this one's earlier process (see {@link RunStateStore.sharedRuns}).
 * Of a success read from the cooldown's Lease, only its end is known (the cooldown's start): its receipt and start are given as its end.
 */
export interface SharedRun extends RunEnd {
  key: string;
  outcome: 'failed' | 'succeeded';
  /** The replica that ran it. */
  replica: string;
}

/** A run another replica cut short (handed back at its shutdown, or left when it stopped renewing), with the event it was for. */
export interface CutShortRun extends Pick<RunProgress, 'event' | 'receivedAt'> {
  key: string;
  flow: string;
}

/** A run of another replica that this one took over: its holder stopped renewing the group's Lease mid-run, or handed it back at shutdown. */
export interface TakenOver {
  /** The replica that held it; empty when it was handed back. */
  holder: string;
  /** The holder cut the run short at shutdown and gave its Lease up (and reported it interrupted itself). */
  handedBack: boolean;
  /** This process's own run, which it stopped (and reported interrupted) when it lost its hold: its Lease still named this replica. */
  stoppedHere?: true;
  /** How far the run got there, if it passed a plugin or waited for a retry. */
  place?: LeasePlace;
  /** The event that started the run cut short. */
  eventId: string;
  /** When that run started, ms since epoch. */
  since: number;
}

/**
 * What {@link RunStateStore.claim} decided: for `held`, the run of another
 * replica it ended, if any; for `taken`, what holds the group there: a run in
 * progress (how it ends is not known here, so a source that acknowledges only
 * after acting keeps its message) or a cooldown (the event is done with).
 */
export type ClaimResult = { claim: 'held'; takenOver?: TakenOver } | { claim: 'taken'; heldAs: 'running' | 'cooling' } | { claim: 'unavailable' };

/**
 * The one owner of run state: the engine talks to nothing else about which
 * group is running, waiting for a try or cooling down. Decisions are taken on
 * local state at once (`tryStart` stays synchronous, so two copies of one
 * alert in this process never both start); a backend shared by several
 * replicas confirms them with {@link claim} before any plugin acts, and
 * {@link commit} tells a source when what it handed in is settled.
 */
export interface RunStateStore {
  readonly backend: StateBackend;
  /**
   * True when a run cut short stays in the store and is resumed after the
   * restart (the file journal); false when it is freed and the next event of
   * its group runs it again.
   */
  readonly resumesRuns: boolean;
  /**
   * True when each plugin a run passed is recorded (with {@link progress}, then {@link commit}) before
   * the next acts: the run then goes on after it when resumed or taken over, rather than call it again.
   */
  readonly recordsSteps: boolean;
  /** Groups held at most; beyond it a new group is refused (`full`). */
  readonly maxGroups: number;
  /** Groups held locally, cooldowns that are over but not yet swept included. */
  readonly size: number;
  /** False while the store cannot be written or reached: new events must be refused. */
  readonly durable: boolean;
  /** The atomic local check-and-start (see {@link GroupState}). */
  tryStart(key: string, flow: string, run: RunProgress, now: number): StartDecision;
  /**
   * Resolves once the store decided whether this process may act on the group
   * for `run`, the run `tryStart` started (or a later try of it): a run that
   * waited in a queue must get its own claim, never one a later run of its group made.
   */
  claim(key: string, run: RunProgress): Promise<ClaimResult>;
  /**
   * Aborts if this process loses its hold on the group while its run is in
   * progress (another replica may then run it); undefined where a hold cannot
   * be lost (memory, file).
   */
  holdLost(key: string): AbortSignal | undefined;
  /**
   * Awaited before each plugin call of a run in progress: aborts
   * {@link holdLost}'s signal if the hold may have lapsed meanwhile unseen (a
   * process stopped or starved past its renewals acts on an answer before any
   * timer of its own runs), or may lapse before it is next renewed (it is
   * renewed first then). Nothing to do where a hold cannot be lost.
   */
  checkHold(key: string): Promise<void>;
  /** Records how far a running or retrying run got. */
  progress(key: string, phase: 'running' | 'retrying', run: RunProgress): void;
  /**
   * After success: hold the group for `cooldownMs` (none when 0). `end`: how the run ended, which a store shared by
   * several processes records when no cooldown's hold says it succeeded (see {@link sharedRuns}).
   */
  succeeded(key: string, now: number, cooldownMs: number, end?: RunEnd): void;
  /**
   * After failure, or when the run never started: the group is free again. A run that failed for good names its
   * `failure`, which a store that outlives the process keeps (the journal: see {@link recoveredFailures}; the kubernetes
   * backend, for every replica: see {@link sharedRuns}).
   */
  release(key: string, failure?: RunEnd): void;
  /**
   * A run a shutdown cut short (in flight, or waiting for its next try), at `run`'s place: the journal
   * keeps it, to resume after the restart; a Lease is handed back with the place, for the group's next
   * event on any replica to go on from; memory frees the group.
   */
  cutShort(key: string, run: RunProgress): void;
  /**
   * Hears of runs another process cut short (it handed them back at its shutdown, or stopped renewing them) whose
   * event the store keeps, so that this one goes on with them without waiting for the event to be sent again: the
   * kubernetes backend finds them as it lists its Leases. The other backends hand nothing over between processes.
   */
  onCutShort(listener: (run: CutShortRun) => void): void;
  /** Takes back a state read from the store at start, without writing it again unless `rewrite` (it was changed since it was read). */
  restore(state: GroupState, rewrite?: { rewrite: boolean }): void;
  /** The state holding the group now, as this process knows it. */
  holder(key: string, now: number): GroupState | undefined;
  get(key: string): GroupState | undefined;
  /** Every live state this process knows (cooldowns that are over left out); given `events`, those of these events alone. */
  list(now: number, events?: ReadonlySet<string>): GroupState[];
  coolingByFlow(now: number): Map<string, number>;
  /** Forgets cooldowns that are over; returns how many. */
  sweep(now: number): number;
  /**
   * Resolves once every change so far is settled in the store: true, or false
   * when it cannot be saved or checked now (the sender must be refused).
   * With `key`, a backend may settle only that group's changes (a run's end
   * need not wait for the claims of other groups in flight). With `since`
   * (from {@link mark}), a claim that failed since then makes it false, also one
   * that failed before this call.
   */
  commit(key?: string, since?: number): Promise<boolean>;
  /** A point to hand {@link commit} as `since`: where a source begins handing in one batch. */
  mark(): number;
  /** Runs that were in progress when the last process on this store stopped, and cooldowns it left (empty but for the journal). */
  readonly recovered: readonly GroupState[];
  /**
   * The last runs that failed for good before the last process on this store stopped, oldest first (empty but for the
   * journal): the status API lists them again, as it did before the restart.
   */
  readonly recoveredFailures: readonly FailedRunRecord[];
  /**
   * Resolves once what this process knows of the groups and runs of the other replicas sharing the store was read at
   * most `maxAgeMs` before the call: a status read that follows a write to another replica (a follower that sent an
   * event there) sees it. The kubernetes backend lists its Leases (reads that come meanwhile share the next list):
   * for `view` `groups` those of run state alone, for `runs` the run-end Leases too;
   * nothing to do for the others. Never rejects: a list that fails leaves what the last one read.
   */
  catchUp(maxAgeMs: number, view: StatusView): Promise<void>;
  /**
   * The runs that ended on the other replicas sharing the store, or on this one's earlier process, newest first, as the
   * last list read them: the kubernetes backend's run-end Leases of the last 15 minutes (runs that failed for good, and
   * successes in flows with no cooldown) and the cooldowns other replicas hold (each a success), so that the status API lists a run's end whichever replica a follower of its event
   * reads. None for the other backends (the journal's failures are listed again by the engine after a restart).
   * Given `events`, those of these events alone (of all the runs kept, not of the newest listed).
   */
  sharedRuns(events?: ReadonlySet<string>): readonly SharedRun[];
  /** The backend and what identifies this process in it, for the status API. */
  describe(): StoreDescription;
  /** Saves what is pending and lets go of the store. */
  close(): Promise<void>;
}
