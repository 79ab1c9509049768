import type { CloudEvent } from '@hollowtrees/grpcplugin';
import type { StateBackend } from '../state/run-state-store.js';

/** Why a flow that matched an event could not take it. */
export type DropReason = 'queue_full' | 'too_many_groups' | 'shutting_down';

/** A flow that matched an event but could not take it; a re-send of the event can still run there. */
export interface Drop {
  flow: string;
  reason: DropReason;
  /** What was full, for the sender: e.g. `its queue is full (queueSize 10000)`. */
  detail?: string;
}

/** What became of one event handed to the sink. */
export interface Acceptance {
  /** Flows whose type and filters took the event. */
  matched: number;
  /** Runs started or queued. */
  started: number;
  /** Flows that passed the event by because its group was running, waiting for a retry or cooling down. */
  deduplicated: number;
  /**
   * Of `deduplicated`, runs in progress in this process that now tell this
   * event's `onSettled` how they end: one nobody listened to (resumed from the
   * journal after a restart), as if this event had started it; or one another
   * event started, whose success this event hears as `deduplicated`. Absent
   * when no listener was given.
   */
  joined?: number;
  /**
   * Of `deduplicated`, groups whose run is in progress on another replica
   * (shared run state): how that run ends is not told here, and if that
   * replica dies the run is cut short, so a source that acknowledges only
   * after acting keeps its message for a later delivery. Absent when none.
   */
  runningElsewhere?: number;
  /** The flows of {@link runningElsewhere}, by name. */
  runningElsewhereIn?: readonly string[];
  /** Flows that matched the event but could not take it (no room, or core is shutting down). */
  dropped: readonly Drop[];
}

/**
 * How one run an event started ended, told to the source that handed the
 * event in with a listener. A source that acknowledges only after acting (a
 * queue, which deletes its message) needs it; one that acknowledges on
 * acceptance (HTTP) does not listen.
 */
export interface RunSettlement {
  readonly flow: string;
  /**
   * `interrupted`: a shutdown cut it short (with a journal it resumes after the
   * restart), or the run-state store could not be reached, or could not record
   * the run (a full disk), before it acted. `deduplicated`: it never acted, because another replica's cooldown
   * holds its group, or another event's run of its group here succeeded.
   * `running_elsewhere`: it never acted, because another replica's run of its
   * group is in progress; how that run ends is not told here.
   */
  readonly outcome: 'succeeded' | 'failed' | 'interrupted' | 'deduplicated' | 'running_elsewhere';
  /** The gRPC code name (`NOT_FOUND`, `UNAVAILABLE`, ...) of the plugin failure that ended a failed run. */
  readonly code?: string;
  /** Why it failed or was cut short. */
  readonly error?: string;
  /** When the run's first plugin call started (ms since the epoch); absent when no plugin was called. */
  readonly firstCallAt?: number;
}

/**
 * Told once per run the event started or joined ({@link Acceptance.started}
 * plus {@link Acceptance.joined} runs), when
 * that run has ended for good and the store was asked to save its outcome: never on a failure
 * the engine tries again by itself (`runRetry`). Not told after a restart (a
 * run resumed from the journal has no listener) nor for a run still waiting
 * for a later try when core stops. While the run state cannot be written (a full disk), told all the same: the
 * plugins acted, and an event kept for a re-send would act again wherever the store never had its run; the
 * outcome is written once the disk is back (a crash before then resumes the run from its last step on disk).
 */
export type RunListener = (settlement: RunSettlement) => void;

/** How an event is handed to {@link EventSink.accept}. */
export interface AcceptOptions {
  /**
   * The event was handed in before and comes again only to learn whether its group is still held (a queue source
   * keeps a message hidden while another replica runs its group, and looks again every second): a deduplication is
   * then not counted again, so `hollowtrees_events_deduplicated_total` counts deliveries, not looks.
   */
  readonly again?: boolean;
  /**
   * Only these flows take the event: a look again asks the flows it waits for, not those that already acted on it (a
   * flow whose cooldown ended meanwhile, or that has none, would act again).
   */
  readonly flows?: ReadonlySet<string>;
  /**
   * Flows that settled the event for good before (a queue's redelivery of a message left for another flow's failed
   * run): they pass it by, counted as deduplicated; one whose group no cooldown holds would act on it again.
   */
  readonly settled?: ReadonlySet<string>;
}

/**
 * Where every source hands its events (the flow engine behind it). The
 * contract, the same for every source:
 *
 * - An event is **accepted** when `accept` returned no drops: every flow it
 *   matched started (or queued) a run, or already holds its group (deduplicated),
 *   or no flow matched it. Matching no flow is accepted too: nothing is to be done.
 * - An event with drops was **not** accepted: a flow that should act on it had no
 *   room or core is shutting down. The sender must be asked to send it again
 *   (HTTP: 503 with Retry-After; a queue: leave the message to be redelivered).
 * - A sender may be **told** an event was accepted (HTTP 200, a queue message
 *   deleted) only after `commit()` resolved true: the runs it started are then
 *   on disk, and a crash after the acknowledgement resumes them. `commit()`
 *   resolving false means the run state cannot be saved now: refuse, do not acknowledge.
 * - While `durable` is false, refuse new events before reading them (HTTP 503
 *   `state_unavailable`), and report not ready. While `noRoom()` says why,
 *   a source may refuse a batch before parsing it (HTTP 503 `queue_full`).
 */
export interface EventSink {
  /**
   * Hands one event to the flows; never throws. `receivedAt` is when the source received it (ms since the epoch).
   * `onSettled`, when given, hears how each run the event started ended (see {@link RunListener}).
   */
  accept(event: CloudEvent, receivedAt: number, onSettled?: RunListener, options?: AcceptOptions): Acceptance;
  /**
   * Why no flow could take an event now (each refused one for want of room and
   * is still near its bound), or undefined while one could. A source may ask
   * before parsing a batch and refuse it at once when told why.
   */
  noRoom?(): string | undefined;
  /**
   * Where a source's handing-in of one batch begins, for {@link commit}: a run-state store that checks each run
   * with a shared store (Kubernetes Leases) counts a check that failed since then against the batch, even one that
   * failed before `commit` was called.
   */
  mark?(): number;
  /**
   * Resolves once what was accepted so far is durable; false when the run state cannot be saved now, or (with
   * `since`, from {@link mark}) when a run's check with a shared store failed since then.
   */
  commit(since?: number): Promise<boolean>;
  /** False while the run state cannot be saved: readiness is false and events are refused. */
  readonly durable: boolean;
  /** Where run state is kept, so that a refusal can say what failed. */
  readonly backend: StateBackend;
}
