import type { CloudEvent } from '@hollowtrees/grpcplugin';
import type { Logger } from 'pino';
import { systemClock, wallAheadOf, type Clock } from '@hollowtrees/grpcplugin/without-grpc';
import type { FlowConfig } from '../config/schema.js';
import type { EngineMetrics } from './engine-metrics.js';
import type { ActionPlugin } from '../plugins/action-plugin.js';
import type { ClaimResult, CutShortRun, RunStateStore, StateBackend, TakenOver } from '../state/run-state-store.js';
import { BoundedQueue, FlowSlots } from './bounded-queue.js';
import { DropLog } from './drop-log.js';
import { ThrottledLog } from '../throttled-log.js';
import { approximateBytes } from './event-bytes.js';
import { compileMatcher, describeMismatch, type EventMatcher } from './event-matcher.js';
import { compileGroupKey } from './group-key.js';
import { claimedRun, GroupStates, type FailedRunRecord, type GroupState, type RunProgress, type StepRef } from './group-states.js';
import { HeldBytes } from './held-bytes.js';
import { failedRunOf, RecentRuns, runEndOf, type FinishedRun } from './recent-runs.js';
import { RunListeners } from './run-listeners.js';
import { backoffDelay } from './retry-policy.js';
import { RUN_OUTCOMES, runPlugins, type PluginStep, type RunOutcome, type RunResult } from './run-plugins.js';
import { RunSignals } from './run-signals.js';
import { goOnAt, nameOf, passedBy, stepFor, stepOf, type Place } from './resume-place.js';
import type { Acceptance, AcceptOptions, Drop, DropReason, RunListener } from '../sources/event-sink.js';

const NO_DROPS: readonly Drop[] = Object.freeze([]);
/** The attributes of a run no plugin has answered yet: one frozen object for every queued run, not one each. */
const NO_ATTRIBUTES: Record<string, string> = Object.freeze({});

/** A run resumed after this many restarts is given up: something in it keeps the process from finishing it. */
export const MAX_RESTARTS = 5;

/** What became of one event: the sink contract's {@link Acceptance}. */
export type DispatchResult = Acceptance;

/** What {@link FlowEngine.recover} found in the journal. */
export interface Recovery {
  /** Cooldowns still running, holding their groups again. */
  cooling: number;
  /** Runs queued, in flight or waiting for a retry when the process stopped, started again. */
  resumed: number;
  /** Runs from a journal without their event (written by an older version): reported, their groups freed. */
  interrupted: number;
  /** Runs that cannot go on (their flow is gone, or they were resumed too often): reported failed. */
  abandoned: number;
}

export interface FlowEngineOptions {
  flows: Readonly<Record<string, FlowConfig>>;
  plugins: ReadonlyMap<string, ActionPlugin>;
  logger: Logger;
  metrics: EngineMetrics;
  /** Default: the system clock. */
  clock?: Clock;
  /** Default: Math.random (retry jitter). */
  random?: () => number;
  /** Finished runs kept for the status API. Default 100. */
  recentRuns?: number;
  /**
   * The finished runs the status API lists, shared with the engine this one replaces, so a reload neither empties the
   * list nor hides the runs the old engine finishes after it. Default: a list of `recentRuns` of this engine's own.
   */
  recent?: RecentRuns;
  /** Where run state lives; shared with the engine this one replaces on reload, so groups stay held. Default: memory only. */
  store?: RunStateStore;
  /** Bytes held by runs, shared with the engine this one replaces. Default: no global limit. */
  heldBytes?: HeldBytes;
  /** Shared with the engine this one replaces, so a handed-over run still tells its source how it ended. */
  listeners?: RunListeners;
  /** Each flow's run slots, shared with the engine this one replaces, so a reload never runs more than `concurrency` at once. */
  slots?: FlowSlots;
}

interface CompiledFlow {
  name: string;
  config: FlowConfig;
  matches: EventMatcher;
  groupKey: (event: CloudEvent) => string;
  steps: PluginStep[];
  queue: BoundedQueue;
  /** The flow's metric labels, made once: a wave's runs would otherwise make them per run. */
  labels: { readonly flow: string };
  outcomeLabels: Readonly<Record<RunOutcome, { readonly flow: string; readonly outcome: RunOutcome }>>;
}

/** A run waiting for its next try. */
interface WaitingRun {
  flow: CompiledFlow;
  /** Ends the wait without running (shutdown, or handed to a successor). */
  cancel: AbortController;
  bytes: number;
}

/** The status API's view of one flow. */
export interface FlowStatus {
  name: string;
  description: string;
  allowedEvents: string[];
  groupBy: string[];
  cooldownMs: number;
  plugins: string[];
  /** Runs calling plugins, counting those of the engines a reload replaced that still finish theirs. */
  running: number;
  /** Runs waiting for a slot, counting those of the engines a reload replaced. */
  queued: number;
  /** Runs that failed on a retryable code and wait for their next try. */
  waitingForRetry: number;
  /** Bytes of events held by this flow's queued, running and waiting runs. */
  heldBytes: number;
}

/** The warning for a run a shutdown cut short, by where run state is kept. */
const INTERRUPTED_BECAUSE: Readonly<Record<StateBackend, string>> = {
  memory: 'flow run interrupted; without state.file it is lost',
  file: 'flow run interrupted; it resumes after the restart',
  kubernetes: 'flow run interrupted; its Lease is handed back with its event and the plugins it passed, so another replica goes on after them',
};
/** A run stopped because its hold on the group lapsed or was taken over: nothing is handed back, the group is another process's to take. */
const INTERRUPTED_HOLD_LOST: Readonly<Record<StateBackend, string>> = {
  memory: 'flow run interrupted: this process lost its hold on the group',
  file: 'flow run interrupted: another process took the state file over; it goes on after the plugins this run passed',
  kubernetes: 'flow run interrupted: this replica lost its hold on the group\'s Lease; the replica that takes the group over goes on after the plugins this run passed',
};
/** A run waiting for its next try whose hold on the group was lost: it waits no more here; who makes that try. */
const WAITING_HOLD_LOST: Readonly<Record<StateBackend, string>> = {
  memory: 'a run waiting for its next try lost its hold on the group',
  file: 'a run waiting for its next try lost its hold on the group: this process lost the lock on the state file; the process that holds the file next (this one restarted, or another) makes that try',
  kubernetes: 'a run waiting for its next try lost its hold on the group: the replica that takes its Lease over makes that try',
};

/** Why a flow has no room, in a drop's detail and in `noRoom`'s answer. */
const ALL_FLOWS_HOLD = (held: HeldBytes): string => `all flows hold ${held.total} bytes of events (state.maxQueuedBytes)`;
const FLOW_HOLDS = (held: HeldBytes, flow: string): string => `it holds ${held.of(flow)} bytes of events (queueBytes)`;
const QUEUE_FULL = (size: number): string => `its queue is full (queueSize ${size})`;

/**
 * How far below the bound it met a flow that refused an event must drain
 * before batches are parsed for it again (see `noRoom`): far enough that a
 * batch parsed then mostly fits, near enough that the runs rarely wait for work.
 */
const REOPEN_AT = 0.9;

/** `progress` once it passed `passed` more of `steps`, with the plugins' `attributes` so far. */
function progressAt(steps: readonly PluginStep[], progress: RunProgress, passed: number, attributes: Record<string, string>): RunProgress {
  const next = progress.next + passed;
  const at = stepOf(steps, next, [...passedBy(steps, progress.next, progress.at), ...steps.slice(progress.next, next).map(nameOf)]);
  return { ...progress, attributes, next, ...(at ? { at } : {}) };
}

/** A pass that called no plugin and failed with `error`. */
function callingNothing(error: string, progress: RunProgress): RunResult {
  return { outcome: 'failed', error, calls: [], attributes: progress.attributes, reached: 0, ignored: [] };
}

/** Where a run of flow `name` taken from elsewhere (`run`: where it stopped) goes on in `flow` after `restarts` restarts, or why it does not. */
function resumeAt(flow: CompiledFlow | undefined, name: string, run: Pick<RunProgress, 'next' | 'at'>, restarts: number): Place {
  if (!flow) return { reason: `flow ${name} is no longer configured` };
  if (restarts > MAX_RESTARTS) return { reason: `it was resumed ${MAX_RESTARTS} times and never finished` };
  // The flow's plugins may have changed since the run stopped (a restart on a new configuration): it goes on with the plugin it stopped at.
  const place = goOnAt(flow.name, flow.steps, run.next, run.at);
  // A run journalled without its step (format 2) past the end of a flow that lost plugins: it would call nothing and count as succeeded.
  if ('next' in place && place.next >= flow.steps.length) return { reason: `flow ${name} has ${flow.steps.length} plugins now; the run was to go on with its plugin ${run.next + 1}` };
  return place;
}

/**
 * Where the run of `progress.event` goes on in `flow` when it took over a run of another replica: after the plugins that
 * run passed, when it was for the same event; from the start for another event of the group, or one that recorded no place.
 */
function goOnAfter(flow: CompiledFlow, progress: RunProgress, { place, eventId }: TakenOver): RunProgress | { reason: string } {
  if (eventId !== progress.event.id) return progress;
  // Stopped before a plugin passed, the run kept no place: it starts from its start again, which is a restart all the same (written
  // in its Lease before a plugin acts). Else a run whose first call stops its replica each time (an OOM kill) went on for ever.
  if (!place) return { ...progress, restarts: progress.restarts + 1 };
  // Waiting for its next try the run called nothing, so taking it over restarts nothing.
  const restarts = place.restarts + (place.waiting ? 0 : 1);
  const where = resumeAt(flow, flow.name, place, restarts);
  if ('reason' in where) return where;
  const { next } = where;
  // Waiting for its next try, it makes that try when it was due there (see FlowEngine.waitForTry).
  const wait = place.waiting && place.retryAt !== undefined ? { retryAt: place.retryAt } : {};
  return { ...progress, attributes: place.attributes, attempt: place.attempt, restarts, next, at: stepFor(flow.steps, next, place.at)!, ...wait };
}

/** The one line for the queued runs the end of the shutdown grace period kept from starting. */
const NOT_STARTED_BECAUSE: Readonly<Record<StateBackend, string>> = {
  memory: 'queued runs had not started when the shutdown grace period ended; without state.file they are lost',
  file: 'queued runs had not started when the shutdown grace period ended; they resume after the restart',
  kubernetes: 'queued runs had not started when the shutdown grace period ended; they are handed back in their Leases with their events, for another replica to run',
};

/** The debug line of a deduplicated event, by what holds its group. */
const HELD_BECAUSE: Readonly<Record<GroupState['phase'], string>> = {
  running: 'event deduplicated: a run of its group is in progress',
  retrying: 'event deduplicated: a run of its group waits for its next try',
  cooling: 'event deduplicated: its group is cooling down',
};

/**
 * Dispatches events to every matching flow: match → group key → atomic
 * check-and-start → bounded per-flow queue → plugins in order → cooldown, or a
 * later try of the run when it failed on retryable codes.
 *
 * With a journal, every run is on disk with its event before its first plugin
 * call (and before the sender is told the event was accepted): a restart,
 * clean or not, resumes the runs that had not finished.
 */
export class FlowEngine {
  readonly states: RunStateStore;
  readonly heldBytes: HeldBytes;
  readonly listeners: RunListeners;
  private readonly flows: CompiledFlow[];
  private readonly byName: Map<string, CompiledFlow>;
  private readonly clock: Clock;
  /** How far the wall clock is ahead of `clock`: times in log lines are shown on the wall clock, as people read them. */
  private readonly wallAhead: () => number;
  private readonly random: () => number;
  private readonly recent: RecentRuns;
  /** What a shutdown past its grace aborts: the signals of the runs in flight. */
  private readonly runSignals = new RunSignals();
  private readonly waiting = new Map<string, WaitingRun>();
  private readonly dropLog: DropLog;
  /** Runs the store could not claim for: a wave's claims fail together while it is down, one line per flow says so every 10 s. */
  private readonly notClaimedLog: ThrottledLog;
  private accepting = true;
  /** Set when the shutdown grace period ends: a queued run that has not started then does not start. */
  private graceOver = false;
  /** Queued runs the end of the grace period kept from starting, for shutdown's one log line. */
  private notStarted = 0;
  /** Flows that refused an event for want of room and have not drained since (see `noRoom`). */
  private readonly refusing = new Set<CompiledFlow>();
  /** Runs started by an event handed in again ({@link AcceptOptions.again}): its deduplication was counted at its first hand-in. */
  private readonly countedAlready = new WeakSet<RunProgress>();
  /**
   * {@link goOnWith} is handing in a run another replica cut short: one with no room here is no event dropped (it stays in
   * its Lease, offered again by every list), so it is neither counted nor logged as one at each renew tick.
   */
  private adopting = false;
  /** The engine that took over after a reload: runs that fail here later retry there. */
  private successor: FlowEngine | undefined;
  /** Engines this one replaced that still drain: their runs count in {@link flowStatus} here. */
  private readonly draining = new Set<FlowEngine>();
  /** Resolves once this engine, replaced by a reload, has drained, and so have the engines it replaced. */
  private retired: Promise<void> = Promise.resolve();
  /** Ends this engine's part in the scraped gauges, once it holds no runs (retired or shut down). */
  private readonly stopScraping: () => void;

  constructor(private readonly options: FlowEngineOptions) {
    this.clock = options.clock ?? systemClock;
    this.wallAhead = wallAheadOf(this.clock);
    this.random = options.random ?? Math.random;
    this.recent = options.recent ?? new RecentRuns(options.recentRuns ?? 100);
    this.dropLog = new DropLog(options.logger, () => this.clock.now());
    this.notClaimedLog = new ThrottledLog(options.logger, () => this.clock.now());
    this.states = options.store ?? new GroupStates();
    this.heldBytes = options.heldBytes ?? new HeldBytes();
    this.listeners = options.listeners ?? new RunListeners();
    const slots = options.slots ?? new FlowSlots();
    this.flows = Object.entries(options.flows).map(([name, config]) => ({
      name,
      config,
      matches: compileMatcher(config.allowedEvents, config.filters),
      groupKey: compileGroupKey(name, config.groupBy),
      steps: config.plugins.map((step) => {
        const plugin = options.plugins.get(step.plugin);
        if (!plugin) throw new Error(`flow ${name}: plugin ${step.plugin} is not built`); // config validation names it first
        return { plugin, config: step.config };
      }),
      queue: new BoundedQueue(config.concurrency, config.queueSize, slots.of(name)),
      labels: { flow: name },
      outcomeLabels: Object.fromEntries(RUN_OUTCOMES.map((outcome) => [outcome, { flow: name, outcome }])) as CompiledFlow['outcomeLabels'],
    }));
    this.byName = new Map(this.flows.map((f) => [f.name, f]));
    options.metrics.initFlows(this.flows.map((f) => f.name));
    // Queue depths and held bytes are read when scraped, not set on every event: the hot path stays free of them.
    this.stopScraping = options.metrics.beforeCollect((queued) => this.updateScrapedGauges(queued));
  }

  /**
   * Hands one accepted event to every flow that takes it. Never throws.
   * `onSettled` hears, once per run this event started (`started` of the
   * result), how that run ended.
   */
  dispatch(event: CloudEvent, receivedAt: number, onSettled?: RunListener, options: AcceptOptions = {}): DispatchResult {
    const result: DispatchResult = { matched: 0, started: 0, deduplicated: 0, dropped: NO_DROPS };
    const { metrics } = this.options;
    let bytes: number | undefined;
    // Why each flow passed the event by, kept only when someone reads the debug log.
    const rejections = this.options.logger.isLevelEnabled('debug') ? new Map<string, string>() : undefined;
    for (const flow of this.flows) {
      if (options.flows && !options.flows.has(flow.name)) continue;
      const mismatch = flow.matches(event);
      if (mismatch) {
        rejections?.set(flow.name, describeMismatch(mismatch));
        continue;
      }
      result.matched++;
      if (options.settled?.has(flow.name)) {
        result.deduplicated++;
        if (!options.again) metrics.eventsDeduplicated.inc({ flow: flow.name });
        continue;
      }
      const key = flow.groupKey(event);
      if (!this.accepting) {
        this.drop(result, flow.name, 'shutting_down', { groupKey: key, eventId: event.id });
        continue;
      }
      const now = this.clock.now();
      const holder = this.states.holder(key, now);
      if (holder) {
        result.deduplicated++;
        // A run resumed after a restart has no listener: the source of a redelivered copy takes its place. Another
        // event's run is followed: a source that acknowledges after acting must not drop its notice before that run succeeded.
        if (onSettled && holder.phase !== 'cooling' && holder.replica === undefined && (this.listeners.join(key, onSettled) || this.listeners.follow(key, onSettled))) result.joined = (result.joined ?? 0) + 1;
        if (holder.phase !== 'cooling' && holder.replica !== undefined) {
          result.runningElsewhere = (result.runningElsewhere ?? 0) + 1;
          result.runningElsewhereIn = [...(result.runningElsewhereIn ?? []), flow.name];
        }
        if (!options.again) metrics.eventsDeduplicated.inc({ flow: flow.name });
        this.options.logger.debug(
          { flow: flow.name, groupKey: key, eventId: event.id, phase: holder.phase, heldBy: holder.eventId, ...(holder.replica ? { replica: holder.replica } : {}), ...(holder.until === undefined ? {} : { until: this.shownTime(holder.until) }) },
          HELD_BECAUSE[holder.phase],
        );
        continue;
      }
      bytes ??= approximateBytes(event);
      if (!this.heldBytes.tryHold(flow.name, flow.config.queueBytes, bytes)) {
        const detail = this.heldBytes.total + bytes > this.heldBytes.limit ? ALL_FLOWS_HOLD(this.heldBytes) : FLOW_HOLDS(this.heldBytes, flow.name);
        this.drop(result, flow.name, 'queue_full', { groupKey: key, eventId: event.id, bytes }, detail);
        this.refusing.add(flow);
        continue;
      }
      // Looked at before the group is started: with state.backend kubernetes its claim begins there, and a claim given up
      // at once would take a run another replica handed back over and delete its Lease, event and place with it.
      if (!flow.queue.hasRoom) {
        this.heldBytes.release(flow.name, bytes);
        this.drop(result, flow.name, 'queue_full', { groupKey: key, eventId: event.id, queueSize: flow.config.queueSize }, QUEUE_FULL(flow.config.queueSize));
        this.refusing.add(flow);
        continue;
      }
      const run: RunProgress = { event, attributes: NO_ATTRIBUTES, receivedAt, next: 0, attempt: 1, restarts: 0, queued: true };
      if (options.again) this.countedAlready.add(run);
      if (this.states.tryStart(key, flow.name, run, now) === 'full') {
        this.heldBytes.release(flow.name, bytes);
        this.drop(result, flow.name, 'too_many_groups', { groupKey: key, eventId: event.id }, `${this.states.maxGroups} groups are held (state.maxGroups)`);
        continue;
      }
      // It has room (looked at above, nothing ran since).
      // Not a closure here: one made in this loop would keep its scopes alive with the run while it waits in the queue.
      this.enqueue(flow, key, run, bytes);
      if (onSettled) this.listeners.listen(key, event, onSettled);
      result.started++;
    }
    if (result.matched === 0) {
      metrics.eventsUnmatched.inc();
      if (rejections) this.options.logger.debug({ eventId: event.id, type: event.type, flows: Object.fromEntries(rejections) }, 'event matched no flow');
    }
    return result;
  }

  /**
   * Goes on with a run another replica cut short (handed back at its shutdown, or left when it stopped renewing),
   * as its event sent again would: the claim takes the group over and the run goes on after the plugins that acted
   * there (one replica's claim wins). Only for a flow of this engine that takes the event and groups it under the
   * Lease's key, and not once this engine stopped taking events: otherwise the run waits for its event again.
   */
  goOnWith(run: CutShortRun): void {
    if (!this.accepting) return;
    const flow = this.byName.get(run.flow);
    if (!flow || flow.matches(run.event) || flow.groupKey(run.event) !== run.key) {
      this.options.logger.debug({ flow: run.flow, groupKey: run.key, eventId: run.event.id }, 'a run another replica cut short is not for a flow of this configuration: it goes on with its next event');
      return;
    }
    this.adopting = true;
    try {
      this.dispatch(run.event, run.receivedAt, undefined, { flows: new Set([run.flow]), again: true });
    } finally {
      this.adopting = false;
    }
  }

  /**
   * Why no flow could take an event now, or undefined while one could: each
   * flow refused an event for want of room (its `queueSize` runs waiting, its
   * `queueBytes`, or all flows' `state.maxQueuedBytes`) and has not drained to
   * 90% of that bound since. Sources may ask before parsing a batch and refuse
   * it at once: near the bound most of a batch is refused after being parsed,
   * and parsing it takes the CPU from the runs that make room. Below, batches
   * are parsed and taken, in part if need be, as before: a batch larger than
   * the room left still gets through in steps, its re-sends deduplicating what
   * was taken.
   */
  noRoom(): string | undefined {
    const full: string[] = [];
    for (const flow of this.flows) {
      const why = this.stillFull(flow);
      if (why === undefined) return undefined;
      full.push(`flow "${flow.name}": ${why}`);
    }
    return full.length > 0 ? full.join('; ') : undefined;
  }

  /** Why a flow that refused an event is still full, or undefined once it has drained to REOPEN_AT of its bounds. */
  private stillFull(flow: CompiledFlow): string | undefined {
    if (!this.refusing.has(flow)) return undefined;
    const held = this.heldBytes;
    if (held.total > REOPEN_AT * held.limit) return ALL_FLOWS_HOLD(held);
    if (held.of(flow.name) > REOPEN_AT * flow.config.queueBytes) return FLOW_HOLDS(held, flow.name);
    if (flow.queue.depth > REOPEN_AT * flow.config.queueSize) return QUEUE_FULL(flow.config.queueSize);
    this.refusing.delete(flow);
    return undefined;
  }

  /**
   * Resolves once every run started so far is settled in the store: true, or
   * false when the run state cannot be saved or checked now (see {@link durable}),
   * or a run's claim failed since `since` (from {@link mark}).
   */
  commit(since?: number): Promise<boolean> {
    return this.states.commit(undefined, since);
  }

  /** Where a source begins handing in one batch, for {@link commit}'s `since`. */
  mark(): number {
    return this.states.mark();
  }

  /** False while the store cannot be written or reached: events must then be refused, not acknowledged. */
  get durable(): boolean {
    return this.states.durable;
  }

  /** A time on `clock` as a log line shows it: RFC 3339 on the wall clock. */
  private shownTime(ms: number): string {
    return new Date(ms + this.wallAhead()).toISOString();
  }

  /** Records on `result`, counts and logs that `flow` dropped an event. */
  private drop(result: DispatchResult, flow: string, reason: DropReason, fields: Record<string, unknown>, detail?: string): void {
    result.dropped = [...result.dropped, { flow, reason, ...(detail ? { detail } : {}) }];
    if (this.adopting) {
      this.options.logger.debug({ flow, reason, ...fields }, 'no room for a run another replica cut short: it stays in its Lease, and a later list offers it again');
      return;
    }
    this.options.metrics.eventsDropped.inc({ flow, reason });
    this.dropLog.dropped(flow, reason, fields);
  }

  private async run(flow: CompiledFlow, groupKey: string, progress: RunProgress, bytes: number): Promise<void> {
    if (this.graceOver) return this.leaveQueued(flow, groupKey, progress, bytes);
    // A later try runs now, no longer waits: a crash during it counts as a restart (MAX_RESTARTS), as for a first try.
    // What it records as it goes (each plugin passed, a cut short) is without the wait too.
    if (this.states.get(groupKey)?.phase === 'retrying') {
      const { retryAt: _due, ...running } = progress;
      progress = running;
      this.states.progress(groupKey, 'running', progress);
    }
    // The store has the run (on disk, or in the Lease every replica sees) before any plugin acts.
    const claimed = await this.states.claim(groupKey, progress);
    if (claimed.claim !== 'held') {
      this.notClaimed(flow, groupKey, progress, bytes, claimed);
      return;
    }
    // What it records from here (each plugin passed, a cut short) is of a run that may have acted: a restart counts it.
    progress = claimedRun(progress);
    // A hold lost from here on (another replica may run the group then) stops this run, as a shutdown does: also while
    // its takeover's place is written below, after which the store no longer hands out the lost hold's signal.
    const lost = this.states.holdLost(groupKey);
    // Taken over from a replica that stopped: the run goes on after the plugins that acted there, as after a restart.
    const goOn = claimed.takenOver ? this.takeOver(flow, groupKey, progress, claimed.takenOver) : progress;
    if (goOn !== progress && !('reason' in goOn)) {
      if (this.waitForTry(flow, groupKey, goOn, bytes)) return;
      const { retryAt: _due, ...running } = goOn;
      progress = running;
      // Its place is in the Lease before a plugin acts: a replica that takes it over in turn goes on from there too.
      this.states.progress(groupKey, 'running', progress);
      await this.states.commit(groupKey);
    }
    const { metrics, logger } = this.options;
    const resumes = this.states.resumesRuns;
    const { labels } = flow;
    metrics.runsInProgress.inc(labels);
    const startedAt = this.clock.now();
    let firstCall = progress.next === 0 && progress.attempt === 1 && progress.restarts === 0;
    let result: RunResult;
    const cancel = lost ? this.runSignals.own(lost) : this.runSignals.shared();
    try {
      result = 'reason' in goOn ? callingNothing(`not resumed: ${goOn.reason}`, progress) : await runPlugins(progress, flow.name, progress.next === 0 ? flow.steps : flow.steps.slice(progress.next), {
        clock: this.clock,
        random: this.random,
        signal: cancel.signal,
        // A process stopped or starved past its renewals reads a plugin's answer before its renew tick: look before acting again.
        ...(lost ? { beforeCall: () => this.states.checkHold(groupKey) } : {}),
        // A crash (kill -9, OOM) mid-run resumes it after the plugins that succeeded, not from where it started.
        ...(this.states.recordsSteps ? { afterStep: (passed, attributes) => this.passedStep(flow, groupKey, progress, passed, attributes) } : {}),
        onCall: (call) => {
          this.listeners.called(groupKey, progress.event, call.startedAt);
          if (firstCall) {
            firstCall = false;
            metrics.receiptToFirstCall.observe(labels, (call.startedAt - progress.receivedAt) / 1000);
          }
          metrics.pluginCalls.inc({ plugin: call.plugin, code: call.code, attempt: call.attempt >= 5 ? '5+' : String(call.attempt) });
          metrics.pluginCallDuration.observe({ plugin: call.plugin }, call.durationMs / 1000);
        },
      });
    } catch (err) {
      // Nothing above should throw; if it does, the group must still be freed, never left running.
      result = callingNothing(`internal error: ${(err as Error).message}`, progress);
    }
    cancel.release();
    const finishedAt = this.clock.now();
    const reached = progressAt(flow.steps, progress, result.reached, result.attributes);
    const run: FinishedRun = {
      flow: flow.name,
      groupKey,
      eventId: progress.event.id,
      eventType: progress.event.type,
      // What settle() decides, just below.
      outcome: 'failed',
      receivedAt: progress.receivedAt,
      startedAt,
      finishedAt,
      calls: result.calls,
    };
    if (result.error) run.error = result.error;
    const outcome = this.settle(flow, groupKey, reached, result, bytes, run);
    run.outcome = outcome;
    const tell = outcome === 'retrying' ? undefined : this.listeners.take(groupKey, progress.event);
    // The cooldown is in the store before the run counts as done: a crash now must not re-run the flow. A write that
    // fails (a full disk) does not hold the source back: the plugins acted, and the journal writes the end with the disk.
    await this.states.commit(groupKey);
    if (tell && outcome !== 'retrying') tell({ flow: flow.name, outcome, ...(result.code ? { code: result.code } : {}), ...(result.error ? { error: result.error } : {}) });

    metrics.runsInProgress.dec(labels);
    metrics.flowRuns.inc(flow.outcomeLabels[outcome]);
    metrics.runDuration.observe(flow.outcomeLabels[outcome], (finishedAt - startedAt) / 1000);
    this.recent.add(run);
    // A wave's succeeded runs at the default level `warn` make no log fields.
    if (outcome === 'succeeded' && result.ignored.length === 0 && !logger.isLevelEnabled('info')) return;
    const log = { flow: flow.name, groupKey, eventId: progress.event.id, outcome, durationMs: finishedAt - startedAt, pluginCalls: result.calls.length, runAttempt: progress.attempt };
    if (result.ignored.length > 0) logger.warn({ ...log, ignoredAttributes: result.ignored }, 'plugins returned attributes that would change the event\'s own labels; they were ignored');
    if (outcome === 'succeeded') logger.info(log, 'flow run succeeded');
    else if (outcome === 'retrying') logger.warn({ ...log, error: result.error, retryAt: this.shownTime(this.states.get(groupKey)?.run?.retryAt ?? finishedAt) }, 'flow run failed on a retryable code; it will be tried again');
    else if (outcome === 'interrupted') logger.warn({ ...log, error: result.error, resumesAfterRestart: resumes }, (lost?.aborted ? INTERRUPTED_HOLD_LOST : INTERRUPTED_BECAUSE)[this.states.backend]);
    else logger.error({ ...log, error: result.error }, 'flow run failed');
  }

  /**
   * A run taken over while it waited for its next try, which is not due yet: it waits on here, holding its group, until
   * then (at most its flow's `runRetry.maxBackoff` from now, as after a restart: the time is its last holder's wall clock).
   * Tried at once instead, a run handed from replica to replica in a rolling update spent its tries within seconds on a
   * plugin that had asked it to wait, and failed for good. True when it waits.
   */
  private waitForTry(flow: CompiledFlow, key: string, progress: RunProgress, bytes: number): boolean {
    const now = this.clock.now();
    if (progress.retryAt === undefined || progress.retryAt <= now) return false;
    this.heldBytes.release(flow.name, bytes);
    // In the Lease before the wait: a replica that takes it over in turn waits for the same try.
    this.states.progress(key, 'retrying', { ...progress, retryAt: Math.min(progress.retryAt, now + flow.config.runRetry.maxBackoff) });
    this.scheduleOrHandOver(this.states.get(key)!);
    return true;
  }

  /** Records that a run passed `passed` more steps, and waits until the store has it, before its next plugin acts. */
  private async passedStep(flow: CompiledFlow, key: string, progress: RunProgress, passed: number, attributes: Record<string, string>): Promise<void> {
    this.states.progress(key, 'running', progressAt(flow.steps, progress, passed, attributes));
    // A failed write does not stop the run, as for its claim: new events are refused meanwhile, and the step is written
    // with the disk (a crash before then goes on from the last step on disk, calling this plugin again).
    await this.states.commit(key);
  }

  /**
   * A queued run the shutdown grace period ended before: it calls no plugin,
   * and stays where the store keeps it (see NOT_STARTED_BECAUSE). A source that
   * listens hears it was interrupted. Counted, and logged once for all by
   * `shutdown()`: a queue of thousands would otherwise hold the exit behind as
   * many log lines. A later try that came due keeps the place it waits at (a
   * Lease is handed back with it), rather than its group being freed for a run from the start.
   */
  private leaveQueued(flow: CompiledFlow, key: string, progress: RunProgress, bytes: number): void {
    this.heldBytes.release(flow.name, bytes);
    // As a run cut short before its first call: the journal has it already; a Lease is handed back with its event
    // (and, for a later try that came due, the place it waits at).
    if (!this.states.resumesRuns) this.states.cutShort(key, progress);
    this.listeners.take(key, progress.event)?.({ flow: flow.name, outcome: 'interrupted', error: 'core stopped before the run started' });
    this.options.metrics.flowRuns.inc({ flow: flow.name, outcome: 'interrupted' });
    this.notStarted++;
  }

  /**
   * A run the store did not let act: another replica holds its group (the
   * event counts as deduplicated), or the store could not be asked (the
   * sender is refused by `commit()` and sends again). A source that listens
   * hears `running_elsewhere` for a run in progress there, whose end it is not told.
   */
  private notClaimed(flow: CompiledFlow, key: string, progress: RunProgress, bytes: number, claimed: Exclude<ClaimResult, { claim: 'held' }>): void {
    const { metrics, logger } = this.options;
    this.heldBytes.release(flow.name, bytes);
    const tell = this.listeners.take(key, progress.event);
    const fields = { flow: flow.name, groupKey: key, eventId: progress.event.id };
    if (claimed.claim === 'taken') {
      const running = claimed.heldAs === 'running';
      if (!this.countedAlready.has(progress)) metrics.eventsDeduplicated.inc({ flow: flow.name });
      logger.debug(fields, running ? 'event deduplicated: a run of its group is in progress on another replica' : 'event deduplicated: its group is cooling down on another replica');
      tell?.({ flow: flow.name, outcome: running ? 'running_elsewhere' : 'deduplicated' });
      return;
    }
    this.notClaimedLog.log(flow.name, 'warn', fields, 'run not started: the run-state store could not be reached or could not record it; the sender is refused and sends the event again', 'alsoNotStartedSinceLastLine');
    tell?.({ flow: flow.name, outcome: 'interrupted', error: 'the run-state store could not be reached or could not record the run' });
  }

  /**
   * Another replica's run of the group that stopped without finishing, which this run takes the place of: reported
   * interrupted (unless its replica handed it back, and reported it so, at shutdown, or it is this replica's own run,
   * reported when it stopped as its hold lapsed). Returns where this run goes on
   * ({@link goOnAfter}), or why it does not.
   */
  private takeOver(flow: CompiledFlow, groupKey: string, progress: RunProgress, takenOver: TakenOver): RunProgress | { reason: string } {
    const { holder, eventId, since } = takenOver;
    const goOn = goOnAfter(flow, progress, takenOver);
    // Where it goes on (step 1: from the start), or why it does not.
    const then = 'reason' in goOn ? { notResumed: goOn.reason } : { goesOnAtStep: goOn.next + 1, plugin: flow.steps[goOn.next]?.plugin.name, ...(goOn.retryAt === undefined ? {} : { retryAt: this.shownTime(goOn.retryAt) }) };
    const fields = { flow: flow.name, groupKey, eventId, holder, since: this.shownTime(since), ...then };
    if (takenOver.handedBack) {
      this.options.logger.info(fields, 'run handed back by a replica at its shutdown: this replica takes the group over');
      return goOn;
    }
    // Reported interrupted here when it stopped.
    if (takenOver.stoppedHere) {
      this.options.logger.info(fields, 'run this replica stopped when it lost its hold on the group\'s Lease: it takes the group over again');
      return goOn;
    }
    this.options.metrics.flowRuns.inc({ flow: flow.name, outcome: 'interrupted' });
    this.recent.add({ flow: flow.name, groupKey, eventId, eventType: '', outcome: 'interrupted', error: `replica ${holder} stopped renewing the group's Lease during the run`, receivedAt: since, startedAt: since, finishedAt: this.clock.now(), calls: [] });
    this.options.logger.warn(fields, 'run of another replica interrupted: it stopped renewing its Lease; this replica takes the group over');
    return goOn;
  }

  /** Decides what the group becomes after one pass over the plugins, which `ended` lists (its `finishedAt`: now). */
  private settle(flow: CompiledFlow, key: string, reached: RunProgress, result: RunResult, bytes: number, ended: FinishedRun): RunOutcome {
    const now = ended.finishedAt;
    // The event leaves this run whatever happens; a later try holds its bytes again.
    this.heldBytes.release(flow.name, bytes);
    if (result.outcome === 'succeeded') {
      this.states.succeeded(key, now, flow.config.cooldown, runEndOf(ended));
      return 'succeeded';
    }
    if (result.outcome === 'interrupted') {
      this.states.cutShort(key, reached);
      return 'interrupted';
    }
    const { runRetry } = flow.config;
    if (result.retryable && reached.attempt < runRetry.attempts) {
      const retryAt = now + backoffDelay(runRetry, reached.attempt, this.random);
      const next: RunProgress = { ...reached, attempt: reached.attempt + 1, retryAt };
      this.states.progress(key, 'retrying', next);
      this.options.metrics.runRetries.inc({ flow: flow.name });
      this.scheduleOrHandOver(this.states.get(key)!);
      return 'retrying';
    }
    this.states.release(key, runEndOf(ended));
    return 'failed';
  }

  /**
   * A run that waits for its next try goes to the engine that runs it: this one, the last of its
   * successors (a reload may follow a reload), or the journal alone once that engine is shutting down.
   */
  private scheduleOrHandOver(state: GroupState): void {
    // Not successor.resume(): a successor shut down while this engine drained would start the run after shutdown.
    if (this.successor) this.successor.adopt(state, this.stepAt(state));
    else if (this.accepting) this.resume([state]);
    // Shutting down: the retrying record on disk starts it again after the restart.
  }

  /** Where in this engine's flow a run goes on: the plugin, and the plugins the run called before it. */
  private stepAt(state: GroupState): StepRef | undefined {
    const { next, at } = state.run!;
    return stepFor(this.byName.get(state.flow)?.steps ?? [], next, at);
  }

  /**
   * Takes a run a reloaded engine hands over. Its `next` is a position in the old flow's
   * plugins: a reload that added or took out steps would make it go on with another plugin
   * (one that already acted, or past the end, so the run "succeeded" without its last
   * plugins). It goes on with the plugin it stopped at, found by name where that calls no plugin
   * again that already acted (see goOnAt); a run with no such place fails, freeing its group for the
   * next event to run the new flow.
   */
  private adopt(state: GroupState, at: StepRef | undefined): void {
    const flow = this.byName.get(state.flow);
    const run = state.run!;
    if (!flow || !at) return this.scheduleOrHandOver(state);
    const place = goOnAt(flow.name, flow.steps, run.next, at);
    if ('reason' in place) return this.abandon(state, place.reason);
    const { next } = place;
    if (next === run.next) return this.scheduleOrHandOver(state);
    this.states.progress(state.key, 'retrying', { ...run, next, at: stepFor(flow.steps, next, at)! });
    this.scheduleOrHandOver(this.states.get(state.key)!);
  }

  /**
   * Starts again runs taken from elsewhere: the journal at start (`restart`:
   * each run that was in flight, claimed, counts one restart more; one still queued does not), or an
   * engine a reload replaced.
   * A run whose `retryAt` is ahead waits for it, at most its flow's `runRetry.maxBackoff`. Returns how many were taken.
   */
  resume(states: readonly GroupState[], options: { restart?: boolean } = {}): { resumed: number; abandoned: number } {
    let resumed = 0;
    let abandoned = 0;
    for (const state of states) {
      const flow = this.byName.get(state.flow);
      const run = state.run!;
      // Only a run that was in flight counts: one still queued, or waiting for its next try, through a restart did nothing wrong.
      const restarts = run.restarts + (options.restart && state.phase === 'running' && !run.queued ? 1 : 0);
      const place = resumeAt(flow, state.flow, run, restarts);
      if ('reason' in place) {
        abandoned++;
        this.abandon(state, place.reason);
        continue;
      }
      resumed++;
      const { next } = place;
      // Queued again until claimed: a restart before then counts nothing more.
      const progress: RunProgress = { ...run, restarts, next, at: stepFor(flow!.steps, next, run.at)!, queued: true };
      if (run.retryAt !== undefined) progress.retryAt = Math.min(run.retryAt, this.clock.now() + flow!.config.runRetry.maxBackoff);
      if (options.restart) {
        this.states.restore(state);
        this.states.progress(state.key, state.phase === 'retrying' ? 'retrying' : 'running', progress);
      }
      const bytes = approximateBytes(run.event);
      this.heldBytes.hold(flow!.name, bytes);
      const delay = (progress.retryAt ?? 0) - this.clock.now();
      if (delay <= 0) {
        this.enqueue(flow!, state.key, progress, bytes);
        continue;
      }
      const cancel = new AbortController();
      // Its hold lapsed meanwhile (a Lease's renewals unanswered past its duration, the state file's lock lost): whoever holds it next makes the try.
      const lost = this.states.holdLost(state.key);
      const onLost = (): void => this.lostWhileWaiting(state.key, cancel);
      lost?.addEventListener('abort', onLost, { once: true });
      this.clock.sleep(delay, cancel.signal).then(() => {
        lost?.removeEventListener('abort', onLost);
        this.waiting.delete(state.key);
        this.updateWaitingGauge(flow!.name);
        this.enqueue(flow!, state.key, progress, bytes);
      }, () => lost?.removeEventListener('abort', onLost));
      this.waiting.set(state.key, { flow: flow!, cancel, bytes });
      this.updateWaitingGauge(flow!.name);
    }
    return { resumed, abandoned };
  }

  /**
   * A run waiting for its next try (its wait `cancel`) whose hold on the group was lost: it waits no more here, rather
   * than listed and counted as waiting on this replica until its try came due, only to be refused then. A source that
   * listens hears it is running elsewhere. A store that resumes runs (the file) keeps it as it is: the process that holds
   * the file next makes the try. A Lease's group is freed here: the replica that takes the Lease over has the run.
   */
  private lostWhileWaiting(key: string, cancel: AbortController): void {
    const waiting = this.waiting.get(key);
    if (waiting?.cancel !== cancel) return;
    cancel.abort();
    this.waiting.delete(key);
    this.heldBytes.release(waiting.flow.name, waiting.bytes);
    this.updateWaitingGauge(waiting.flow.name);
    const event = this.states.get(key)?.run?.event;
    if (!this.states.resumesRuns) this.states.release(key);
    this.listeners.take(key, event)?.({ flow: waiting.flow.name, outcome: 'running_elsewhere' });
    this.options.logger.warn({ flow: waiting.flow.name, groupKey: key, eventId: event?.id }, WAITING_HOLD_LOST[this.states.backend]);
  }

  private enqueue(flow: CompiledFlow, key: string, progress: RunProgress, bytes: number): void {
    flow.queue.offer(() => this.run(flow, key, progress, bytes), { force: true });
  }

  private abandon(state: GroupState, reason: string): void {
    this.endRecovered(state, 'failed', `not resumed: ${reason}`, this.clock.now());
    this.options.logger.error({ flow: state.flow, groupKey: state.key, eventId: state.eventId }, `run not resumed: ${reason}`);
  }

  /** A run read back from the journal that will not go on: its group is freed, and it is counted and listed as `outcome`. */
  private endRecovered(state: GroupState, outcome: 'failed' | 'interrupted', error: string, now: number): void {
    const ended = { flow: state.flow, eventId: state.eventId, eventType: state.run?.event.type ?? '', error, receivedAt: state.run?.receivedAt ?? state.since, startedAt: state.since, finishedAt: now };
    this.states.restore(state);
    this.states.release(state.key, outcome === 'failed' ? ended : undefined);
    this.listeners.take(state.key, state.run?.event)?.({ flow: state.flow, outcome, error });
    this.options.metrics.flowRuns.inc({ flow: state.flow, outcome });
    this.recent.add({ ...ended, groupKey: state.key, outcome, calls: [] });
  }

  private updateWaitingGauge(flow: string): void {
    this.options.metrics.runsWaitingForRetry.set({ flow }, this.waitingIn(flow));
  }

  /** Runs of `flow` waiting for their next try. */
  private waitingIn(flow: string): number {
    let count = 0;
    for (const run of this.waiting.values()) if (run.flow.name === flow) count++;
    return count;
  }

  /**
   * Takes back what the journal held at start: cooldowns still running hold
   * their groups again; runs that had not finished (queued, in flight, or
   * waiting for a retry) are resumed where they stopped. A cooldown ends at the
   * latest its flow's `cooldown` from now, and a wait for the next try its
   * `runRetry.maxBackoff` from now (see `resume`): a journal written by a clock
   * that was ahead, or before those were shortened, would hold the group longer.
   * The runs that failed for good before the restart (`failures`, oldest first) are listed again.
   */
  recover(states: readonly GroupState[], failures: readonly FailedRunRecord[] = []): Recovery {
    // Listed as before the restart: a follower of an event that failed meanwhile learns it still.
    for (const failure of failures) this.recent.add(failedRunOf(failure));
    const now = this.clock.now();
    const recovery: Recovery = { cooling: 0, resumed: 0, interrupted: 0, abandoned: 0 };
    const toResume: GroupState[] = [];
    for (const state of states) {
      if (state.phase === 'cooling') {
        const until = Math.min(state.until!, now + (this.byName.get(state.flow)?.config.cooldown ?? Infinity));
        if (until > now) {
          // Cut short, it is written so: read again as it was at the next restart, it would hold the group a whole cooldown more.
          const cut = until !== state.until;
          this.states.restore(cut ? { ...state, until } : state, { rewrite: cut });
          recovery.cooling++;
        }
      } else if (state.run) {
        toResume.push(state);
      } else {
        recovery.interrupted++;
        this.reportInterrupted(state, now);
      }
    }
    const { resumed, abandoned } = this.resume(toResume, { restart: true });
    recovery.resumed = resumed;
    recovery.abandoned = abandoned;
    return recovery;
  }

  private reportInterrupted(state: GroupState, now: number): void {
    this.endRecovered(state, 'interrupted', 'the process stopped during the run', now);
    this.options.logger.warn({ flow: state.flow, groupKey: state.key, eventId: state.eventId, since: this.shownTime(state.since) }, 'run interrupted by a restart; the next event of the group runs again');
  }

  /**
   * Groups cooling down and bytes held, per flow, groups held and whether the store can be
   * written, for the gauges; adds this engine's queued runs per flow to `queued`. The store and
   * the held bytes are shared across reloads, so every flow the metrics know is set, also one a
   * reload took out (its cooldowns still end).
   */
  updateScrapedGauges(queued = new Map<string, number>()): void {
    const { metrics } = this.options;
    const counts = this.states.coolingByFlow(this.clock.now());
    for (const flow of metrics.flows) {
      metrics.groupsCoolingDown.set({ flow }, counts.get(flow) ?? 0);
      metrics.heldEventBytes.set({ flow }, this.heldBytes.of(flow));
    }
    for (const flow of this.flows) queued.set(flow.name, (queued.get(flow.name) ?? 0) + flow.queue.depth);
    this.options.metrics.groupsHeld.set(this.states.size);
    this.options.metrics.stateDurable.set(this.states.durable ? 1 : 0);
  }

  /** Frees memory held by cooldowns that are over. */
  sweep(): number {
    return this.states.sweep(this.clock.now());
  }

  /** Runs calling plugins, queued or waiting for a retry, over all flows. */
  get pending(): number {
    return this.flows.reduce((n, f) => n + f.queue.active + f.queue.depth, 0) + this.waiting.size;
  }

  /** Stops taking events and resolves when every run, queued or in flight, has finished. */
  async drain(): Promise<void> {
    this.accepting = false;
    // Until all are idle at once: a retry that comes due meanwhile starts on a queue that was idle already.
    do await Promise.all(this.flows.map((f) => f.queue.idle()));
    while (this.flows.some((f) => f.queue.active + f.queue.depth > 0));
  }

  /**
   * After a reload: runs waiting for a retry, and runs in flight that fail
   * later, go on in `successor`; this engine then drains. Resolves once it has, and so have the engines it replaced.
   */
  async retire(successor: FlowEngine): Promise<void> {
    this.successor = successor;
    successor.draining.add(this);
    for (const state of this.takeWaiting()) successor.adopt(state, this.stepAt(state));
    // Drained with the engines it replaced: their runs outlast its own (a second reload mid-run), and are counted and ended through it.
    this.retired = this.drain().then(async () => void (await Promise.all([...this.draining].map((engine) => engine.retired))));
    await this.retired;
    successor.draining.delete(this);
    this.stopScraping();
  }

  /** Cancels the timers of runs waiting for a retry and hands their states over. */
  private takeWaiting(): GroupState[] {
    const states: GroupState[] = [];
    for (const [key, run] of this.waiting) {
      run.cancel.abort();
      this.heldBytes.release(run.flow.name, run.bytes);
      const state = this.states.get(key);
      if (state?.run) states.push(state);
    }
    const flows = new Set([...this.waiting.values()].map((run) => run.flow.name));
    this.waiting.clear();
    for (const flow of flows) this.updateWaitingGauge(flow);
    return states;
  }

  /**
   * Stops taking events, waits up to `graceMs` for runs in flight, then
   * cancels what is left. With a journal, cancelled, queued and waiting runs
   * stay on disk and resume after the restart; without one they are lost, and
   * the log says how many. The engines a reload replaced that still drain are shut down with it (as the app does): it
   * ends their runs left waiting for a try once they have drained.
   */
  async shutdown(graceMs: number): Promise<void> {
    const idle = this.drain();
    const graceTimer = new AbortController();
    const expired = this.clock.sleep(graceMs, graceTimer.signal).then(() => 'expired' as const, () => 'idle' as const);
    if ((await Promise.race([idle, expired])) === 'expired') {
      this.graceOver = true;
      this.runSignals.abortAll(new Error('shutdown grace period over'));
      await idle;
    }
    graceTimer.abort();
    this.takeWaiting();
    this.stopScraping();
    if (this.notStarted > 0) {
      this.options.logger[this.states.backend === 'memory' ? 'error' : 'warn']({ runs: this.notStarted }, NOT_STARTED_BECAUSE[this.states.backend]);
    }
    if (this.states.resumesRuns) return;
    // The runs that fail here now wait in the store for the engine that took over, which ends them with its own, once every
    // engine before it drained: ended here, one still waiting there would be called lost (or its Lease handed back), then tried.
    if (this.successor) return;
    await Promise.all([...this.draining].map((engine) => engine.retired));
    // Every run waiting for a try, including those that failed during the grace and were never scheduled.
    const waiting = this.states.list(this.clock.now()).filter((state) => state.phase === 'retrying');
    if (waiting.length === 0) return;
    for (const state of waiting) this.states.cutShort(state.key, state.run!);
    if (this.states.backend === 'kubernetes') this.options.logger.warn({ runs: waiting.length }, 'runs waiting for a retry are handed back with their Leases and events: another replica goes on with them');
    else this.options.logger.error({ runs: waiting.length }, 'runs waiting for a retry are lost: without state.file nothing survives the restart');
  }

  /** The flows with their live counts. */
  flowStatus(): FlowStatus[] {
    return this.flows.map((f) => ({
      name: f.name,
      description: f.config.description,
      allowedEvents: f.config.allowedEvents,
      groupBy: f.config.groupBy,
      cooldownMs: f.config.cooldown,
      plugins: f.config.plugins.map((step) => step.plugin),
      ...this.runsOf(f.name),
      waitingForRetry: this.waitingIn(f.name),
      heldBytes: this.heldBytes.of(f.name),
    }));
  }

  /** Runs of flow `name` calling plugins and queued, here and in the engines this one replaced that still drain. */
  private runsOf(name: string): { running: number; queued: number } {
    const queue = this.byName.get(name)?.queue;
    const runs = { running: queue?.active ?? 0, queued: queue?.depth ?? 0 };
    for (const engine of this.draining) {
      const theirs = engine.runsOf(name);
      runs.running += theirs.running;
      runs.queued += theirs.queued;
    }
    return runs;
  }

  /** Groups running, waiting for a retry or cooling down; given `events`, those of these events alone. */
  groups(events?: ReadonlySet<string>): GroupState[] {
    return this.states.list(this.clock.now(), events);
  }

  /** Finished runs, newest first: the last 100 (see {@link RecentRuns}), or, given `events`, those kept of these events. */
  recentRuns(events?: ReadonlySet<string>): FinishedRun[] {
    return events ? this.recent.ofEvents(events) : this.recent.list();
  }
}
