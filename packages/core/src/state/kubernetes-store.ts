import { randomUUID } from 'node:crypto';
import type { V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { wallAheadOf, type Clock } from '@hollowtrees/grpcplugin/without-grpc';
import { ThrottledLog } from '../throttled-log.js';
import { GroupStates, HELD, UNAVAILABLE, type GroupState, type RunEnd, type RunProgress, type StartDecision } from '../flow/group-states.js';
import { FreshList } from './fresh-list.js';
import { RUN_END_KEPT_MS, RunEndLeases } from './run-end-leases.js';
import { LeaseRefused, LeaseUnreachable, type LeaseApi } from './lease-api.js';
import { eventOf, fromLease, handBack, handedBack, heldUntil, LEASE_SELECTOR, leaseEventId, leaseEventOf, leaseName, placeOf, toLease, type LeasePlace, type LeaseRecord } from './lease-record.js';
import { askedFor, type ClaimResult, type CutShortRun, type SharedRun, type StateBackend, type StatusView, type StoreDescription, type TakenOver } from './run-state-store.js';

/** A claim whose create or takeover got no answer and that ended without holding the group: the write may still be applied, leaving a Lease no run is behind. */
interface Doubt {
  name: string;
  /** What that write would have left in the Lease. */
  record: LeaseRecord;
  /** Monotonic ms after which an orphan would count as expired for every replica anyway: the doubt is dropped then. */
  until: number;
  /** The Lease of a run that ended here, whose delete got no answer: deleted even with a place, looked for until it is answered. */
  ended?: true;
}

/** One claim's calls: begun at `startedAt` (monotonic ms); `unanswered`, what the last write that got no answer (a create or a takeover) would have left in the Lease. */
interface ClaimAttempt {
  unanswered: LeaseRecord | undefined;
  readonly startedAt: number;
}

/** What {@link KubernetesRunStateStore} needs; durations in ms. */
export interface KubernetesStoreOptions {
  api: LeaseApi;
  /** This replica's name in `holderIdentity`. */
  identity: string;
  leasePrefix: string;
  /** A Lease's name as logs show it: its prefix as written in the file when it came from `${VAR}` (unchanged when absent). */
  showLease?: (name: string) => string;
  leaseDurationMs: number;
  renewIntervalMs: number;
  maxGroups: number;
  clock: Clock;
  /** A monotonic clock in ms (default `performance.now`): how long a Lease was seen unchanged is measured on it, never on `clock`. */
  elapsed?: () => number;
  logger: Logger;
}

/** A Lease this replica holds: the last version it wrote or read, and the state it should hold. */
interface HeldLease {
  name: string;
  lease: V1Lease;
  record: LeaseRecord;
  /** Writes of this Lease, one after another (each guarded by the resourceVersion the last one returned). */
  writing: Promise<void>;
  /** The last write of `record` failed for want of an answer: the next renewal writes it again. */
  unsaved: boolean;
  /** When the last write the API server confirmed began, on the monotonic clock: the others see the Lease change no earlier, and count its expiry from then on theirs. */
  confirmedAt: number;
  /** Aborted when the hold is lost while its run is in progress. */
  lost: AbortController;
  /** A renewal made on waking from a stall is on its way ({@link KubernetesRunStateStore.reconfirm}): the hold is judged by its answer. */
  reconfirming?: Promise<void>;
}

/** A Lease as a list found it live; `expiresAt`, for a run's: when this replica would find it expired unless it changes (monotonic ms), as a claim judges it. */
interface ListedLease {
  record: LeaseRecord;
  expiresAt: number;
}

/** Another replica's run holds the group; also said when what holds it is not known, so that a message is kept rather than lost. */
const RUNNING_ELSEWHERE: ClaimResult = Object.freeze({ claim: 'taken', heldAs: 'running' });
const COOLING_ELSEWHERE: ClaimResult = Object.freeze({ claim: 'taken', heldAs: 'cooling' });
/** A create that meets a Lease taken over or deleted meanwhile looks again, this many times in all. */
const ATTEMPTS = 3;
/** After a call got no answer, commits say false until a later call was answered and this long has passed. */
const FAILURE_HOLD_MS = 1_000;
/** The most runs of other replicas the status API lists, the newest: a wave's thousands of cooldowns would be megabytes of JSON at every read. */
const SHARED_RUNS_LISTED = 1_000;
/** While the API server cannot be reached, how often it is asked again. */
const PROBE_MS = 500;
/**
 * How long the sweep keeps the Lease of a run cut short (its holder stopped, or handed it back) that
 * recorded a place or keeps its event, after its hold ended: the group's next event goes on from that
 * place within it, and each list offers the event to go on with (a replica with no room then takes it later).
 * Prometheus sends a firing alert again every minute, an SQS message comes back after its visibility timeout.
 */
export const CUT_SHORT_KEPT_MS = 60 * 60_000;

/** 401 or 403: the API server answers, but this replica may not use its Leases (no Role, a Role in another namespace, a token refused). */
const isDenied = (err: unknown): boolean => err instanceof LeaseRefused && (err.code === 401 || err.code === 403);

/** No answer, a 5xx or a 429: the API server cannot serve this replica now (a 4xx refuses one call, not the store). */
const isOutage = (err: unknown): boolean => !(err instanceof LeaseRefused) || err.code >= 500 || err.code === 429;

/**
 * The `kubernetes` backend: one `coordination.k8s.io/v1` Lease per group held,
 * shared by every replica. The replica that starts a run creates its Lease (a
 * 409 means another replica has the group), renews it while the run is in
 * progress, and on success records the cooldown's end in it; a Lease whose
 * holder stopped renewing (seen unchanged for its duration by this replica's
 * own clock) is taken over with an update guarded by its `resourceVersion`,
 * and the run it held is reported interrupted. Groups this replica knows are
 * held elsewhere are cached until their cooldown ends (or, for a run in
 * progress, until the next list of the renew tick), so re-sends cost no calls.
 */
export class KubernetesRunStateStore extends GroupStates {
  override readonly backend: StateBackend = 'kubernetes';
  override readonly recordsSteps = true;
  private readonly mine = new Map<string, HeldLease>();
  /** Groups other replicas hold, as last seen. */
  private readonly others = new Map<string, { state: GroupState; until: number }>();
  /** Claims `tryStart` began, until their run reads them. */
  private readonly claims = new Map<RunProgress, Promise<ClaimResult>>();
  /** The run whose claim is in flight, by group: a claim that comes back after its run was released gives its Lease up. */
  private readonly claiming = new Map<string, RunProgress>();
  /** Runs cut short while their claim was in flight (the claim's run, to the run as cut short): the claim hands its Lease back as it lands, rather than give it up. */
  private readonly cutWhileClaiming = new Map<RunProgress, RunProgress>();
  /** Every call in flight (claims, writes, renewals, sweeps); none of them rejects. */
  private readonly pending = new Set<Promise<unknown>>();
  /** Of `pending`, what a commit waits for: claims, and the writes that record a run's end (cooldown, release). Never renewals or sweeps. */
  private readonly settling = new Set<Promise<unknown>>();
  /** Of `settling`, the latest of each group (a group's claim and writes go one after another, so it ends after the others). */
  private readonly settlingByKey = new Map<string, Promise<unknown>>();
  /** Lease names by the resourceVersion this replica last saw and since when (monotonic ms): a running Lease is expired only once seen unchanged for its duration. */
  private readonly observed = new Map<string, { version: string; at: number }>();
  /** Leases whose run this process stopped when it lost its hold, while they still name this replica: a claim that takes one over reports no other run interrupted. */
  private readonly stopped = new Set<string>();
  /**
   * Creates that got no answer and may have left a Lease with no run behind it, by group: checked every renew interval, and deleted when found.
   * A group may have two at once (a run's end whose delete got no answer, then a claim of its next event whose create got none): each looks for what its own write would have left.
   */
  private readonly doubts = new Map<string, Doubt[]>();
  private readonly elapsed: () => number;
  /** How far the wall clock is ahead of `clock`: Leases hold wall-clock times, this process compares them on `clock`. */
  private readonly wallAhead: () => number;
  /** Lines a wave repeats (claims that failed while the API server is down, writes it refuses, events too long to keep): one line of a kind every 10 s. */
  private readonly repeatedLog: ThrottledLog;
  /** A list of the renew tick is in flight. */
  private listing = false;
  /** A sweep's list (and its deletes) is in flight: the next sweep is skipped, rather than list every Lease again beside it. */
  private sweeping = false;
  /** Calls that got no answer, and claims that failed, so far. */
  private failures = 0;
  private lastFailureAt = -Infinity;
  private reachable = true;
  /** Lists of the Leases begun so far, and the last of them whose answer was applied (see {@link listShared}). */
  private listsStarted = 0;
  private listApplied = 0;
  /** The Leases of every replica as the latest list read them, for the status API. */
  private shared: ListedLease[] = [];
  /** Told of each run cut short with its event that a list finds (see {@link onCutShort}). */
  private cutShortTo: ((run: CutShortRun) => void) | undefined;
  private readonly renewer: NodeJS.Timeout;
  /** When the renew tick last ran (monotonic ms; the store's start before the first): the next is due renewIntervalMs later. */
  private tickedAt: number;
  private prober: NodeJS.Timeout | undefined;
  /** Runs that failed for good, and successes that leave no cooldown, each in a Lease of its own, so that every replica lists them. */
  private readonly runEnds: RunEndLeases;
  /** The lists {@link catchUp} reads again: the run-state Leases (groups, and the cooldowns listed as runs) and the run-end Leases. */
  private readonly leasesRead: FreshList;
  private readonly runEndsRead: FreshList;

  constructor(private readonly options: KubernetesStoreOptions) {
    super(undefined, options.maxGroups);
    this.elapsed = options.elapsed ?? (() => performance.now());
    this.wallAhead = wallAheadOf(options.clock);
    this.repeatedLog = new ThrottledLog(options.logger, () => options.clock.now());
    const { api, leasePrefix, identity, clock } = options;
    this.runEnds = new RunEndLeases({ api, leasePrefix, identity, clock, wallAhead: this.wallAhead, log: this.repeatedLog });
    this.leasesRead = new FreshList(() => this.track(this.listShared(clock.now(), false)), this.elapsed);
    this.runEndsRead = new FreshList(() => this.track(this.runEnds.list()), this.elapsed);
    this.renewer = setInterval(() => this.renew(), options.renewIntervalMs).unref();
    this.tickedAt = this.elapsed();
  }

  override describe(): StoreDescription {
    return { ...super.describe(), identity: this.options.identity };
  }

  override holder(key: string, now: number): GroupState | undefined {
    const local = super.holder(key, now);
    if (local) return local;
    const other = this.others.get(key);
    if (other && other.until > now) return other.state;
    if (other) this.others.delete(key);
    return undefined;
  }

  /** Starts the group locally at once and its Lease claim in the background; the run waits for the claim. */
  override tryStart(key: string, flow: string, run: RunProgress, now: number): StartDecision {
    const decision = super.tryStart(key, flow, run, now);
    if (decision === 'started') {
      this.claiming.set(key, run);
      const claim = this.acquire(key, flow, run, now);
      this.claims.set(run, claim);
      this.track(claim, key);
    }
    return decision;
  }

  override claim(key: string, run: RunProgress): Promise<ClaimResult> {
    const claim = this.claims.get(run);
    if (claim) {
      this.claims.delete(run);
      // A run that waited in its flow's queue since its claim came back may have lost the hold meanwhile (renewals
      // unconfirmed): another replica may run the group by now, so it goes on only while the Lease is still ours.
      return claim.then((result) => (result.claim === 'held' ? this.stillHeld(key, result) : result));
    }
    // A later try of a run, or a run handed over on reload: the same.
    return Promise.resolve(this.stillHeld(key, HELD));
  }

  /** `held` while the group's Lease is this replica's; otherwise frees the group here: its run goes on elsewhere. */
  private stillHeld(key: string, held: ClaimResult): ClaimResult {
    if (this.mine.has(key)) return held;
    super.release(key);
    return RUNNING_ELSEWHERE;
  }

  override succeeded(key: string, now: number, cooldownMs: number, end?: RunEnd): void {
    // Without a cooldown this calls release(), which deletes the Lease: the success is recorded in a Lease of its own instead.
    super.succeeded(key, now, cooldownMs);
    if (cooldownMs === 0 && end) this.track(this.runEnds.record(key, end, 'succeeded'));
    const held = this.mine.get(key);
    if (cooldownMs > 0 && held) {
      const { place: _done, event: _acted, ...record } = held.record;
      this.write(key, held, { ...record, phase: 'cooling', since: now, until: now + cooldownMs, renewedAt: now }, { settles: true });
    }
  }

  /** Also writes the run's place into its Lease when it moved (a plugin passed, a retry due), so a replica that takes it over goes on from there. */
  override progress(key: string, phase: 'running' | 'retrying', run: RunProgress): void {
    super.progress(key, phase, run);
    const held = this.mine.get(key);
    if (held?.record.phase !== 'running') return;
    const place = this.placeToKeep(key, run);
    if (JSON.stringify(place) === JSON.stringify(held.record.place)) return;
    const { place: _old, ...record } = held.record;
    this.write(key, held, place ? { ...record, place } : record, { settles: true });
  }

  /**
   * Hands the run's Lease back with its place (holder empty), rather than delete it: the next replica to list
   * the Leases goes on with it by itself (the Lease has its event since the claim), and the group's next event
   * on any replica takes it over at once; either goes on after the plugins the run passed.
   */
  override cutShort(key: string, run: RunProgress): void {
    const held = this.mine.get(key);
    if (!held) {
      // A run still queued when the grace ended may have its claim on its way: its Lease is handed back once it lands. Given up
      // with it, the Lease went with the run's event (and a place the claim took over), though its sender was told it was taken.
      const claiming = this.claiming.get(key);
      if (claiming) this.cutWhileClaiming.set(claiming, run);
      return this.release(key);
    }
    this.forget(key);
    this.giveBack(key, held, run);
  }

  /** Hands `held` back with the place of `run`, cut short ({@link cutShort}); deletes it when there is no place to keep. */
  private giveBack(key: string, held: HeldLease, run: RunProgress): void {
    // The Lease's place is the run's latest (each move is written there at once), or the one its claim took over from a
    // hand-back, which a run still queued here has not gone on from yet: from `run` it would call again the plugins that acted.
    const place = held.record.phase === 'running' ? (held.record.place ?? this.placeToKeep(key, run)) : undefined;
    if (!place) return this.dropHeld(key);
    this.mine.delete(key);
    held.record = handBack({ ...held.record, place }, this.options.clock.now());
    const written = held.writing.then(async () => {
      try {
        held.lease = await this.saveHeld(held);
        this.answered();
      } catch (err) {
        // Taken by another replica meanwhile, or unanswered: the Lease then expires with the place it had, which a takeover finds as well.
        if (!(err instanceof LeaseLost)) this.writeFailed(err, key, held.name, 'the Lease expires with what it held before');
      }
    });
    this.track(written, key);
  }

  /** `run`'s event, or undefined (and a warning) when it is too long to keep in a Lease: a run cut short then waits for its event again. */
  private eventToKeep(key: string, run: RunProgress): string | undefined {
    const event = eventOf(run, this.wallAhead());
    if (!event) this.repeatedLog.log('event too long', 'warn', { groupKey: key, eventId: run.event.id }, 'the event is too long to keep in the run\'s Lease: if the run is cut short, it goes on only when the event is sent again', 'alsoTooLongSinceLastLine');
    return event;
  }

  /** `run`'s place, or undefined (and a warning) when it is too long to keep in a Lease: a takeover then runs the group from its start. */
  private placeToKeep(key: string, run: RunProgress): LeasePlace | undefined {
    const place = placeOf(run);
    if (!place) this.repeatedLog.log('place too long', 'warn', { groupKey: key, plugin: run.at?.plugin }, 'the plugins\' attributes are too long to keep in the run\'s Lease: a replica that takes the run over runs it from its start', 'alsoTooLongSinceLastLine');
    return place;
  }

  override onCutShort(listener: (run: CutShortRun) => void): void {
    this.cutShortTo = listener;
  }

  override holdLost(key: string): AbortSignal | undefined {
    return this.mine.get(key)?.lost.signal;
  }

  /**
   * Before a plugin call: loses the hold now when its renewals went unconfirmed too long (the renew tick may not
   * have run yet), or, when this process itself did not run meanwhile, once a renewal made now is not confirmed ({@link reconfirm}); and when the next tick would find them so (a claim answered late, a renewal that failed), renews
   * first, and loses the hold now if that renewal is not confirmed either. A plugin called on such a hold was
   * stopped mid-call by the next tick, and then called again for the same run here or on another replica.
   */
  override async checkHold(key: string): Promise<void> {
    const held = this.mine.get(key);
    if (!held) return;
    if (held.reconfirming) return held.reconfirming;
    const at = this.elapsed();
    // The renew tick is overdue: this process did not run, so its renewals were not even sent. Asked now, the API server tells whether the hold lasted.
    if (this.unconfirmedTooLong(held, at) && this.stalledSince(at)) return this.reconfirm(key, held, at);
    if (this.loseHoldIfUnconfirmed(key, held, at)) return;
    const nextTick = this.tickedAt + this.options.renewIntervalMs;
    if (!this.unconfirmedTooLong(held, nextTick)) return;
    this.write(key, held, { ...held.record, renewedAt: this.options.clock.now() });
    await held.writing;
    if (this.mine.get(key) === held) this.loseHoldIfUnconfirmed(key, held, Math.max(this.elapsed(), nextTick), ' by its next renewal');
  }

  override release(key: string, failure?: RunEnd): void {
    this.forget(key);
    this.dropHeld(key);
    if (failure) this.track(this.runEnds.record(key, failure, 'failed'));
  }

  /** The groups' view lists the run-state Leases alone; the runs' view the run-end Leases too. */
  override catchUp(maxAgeMs: number, view: StatusView): Promise<void> {
    const leases = this.leasesRead.fresh(maxAgeMs);
    return view === 'groups' ? leases : Promise.all([leases, this.runEndsRead.fresh(maxAgeMs)]).then(() => undefined);
  }

  /** The run-end Leases, and each cooldown another replica holds (listed for the status API as the success it follows), of the last 15 minutes. */
  override sharedRuns(events?: ReadonlySet<string>): readonly SharedRun[] {
    const since = this.options.clock.now() - RUN_END_KEPT_MS;
    const runs: SharedRun[] = this.runEnds.shared().filter((run) => askedFor(events, run.eventId));
    for (const { record } of this.shared) {
      if (record.phase !== 'cooling' || record.since < since || this.mine.has(record.key) || !askedFor(events, record.eventId)) continue;
      const { key, flow, eventId, since: finishedAt, holder: replica } = record;
      runs.push({ key, flow, eventId, eventType: '', receivedAt: finishedAt, startedAt: finishedAt, finishedAt, outcome: 'succeeded', replica });
    }
    return runs.sort((a, b) => b.finishedAt - a.finishedAt).slice(0, SHARED_RUNS_LISTED);
  }

  /** Frees the group here, and a claim in flight for it: released before its claim came back (a full queue), the claim's Lease is given up when it does. */
  private forget(key: string): void {
    super.release(key);
    const claiming = this.claiming.get(key);
    if (claiming) {
      this.claiming.delete(key);
      this.claims.delete(claiming);
    }
  }

  /** Gives up the group's Lease, if this replica holds it. */
  private dropHeld(key: string): void {
    const held = this.mine.get(key);
    if (!held) return;
    this.mine.delete(key);
    this.deleteLease(held);
  }

  override list(now: number, events?: ReadonlySet<string>): GroupState[] {
    const local = super.list(now, events);
    const seen = new Set<string>();
    const elsewhere: GroupState[] = [];
    const at = this.elapsed();
    for (const { record, expiresAt } of this.shared) {
      if (!askedFor(events, record.eventId)) continue;
      // A group this replica holds is its own, whatever event the others' Lease last named.
      // A run's hold is judged on this replica's own clock, as a claim judges it: by its renewTime, a wall clock 30 s ahead hid every run of the others.
      if (seen.has(record.key) || super.holder(record.key, now) || (record.phase === 'cooling' ? record.until! <= now : expiresAt <= at)) continue;
      seen.add(record.key);
      elsewhere.push(stateOf(record));
    }
    return [...local, ...elsewhere];
  }

  /**
   * Also deletes the Leases whose hold is over, this replica's and those of replicas that stopped, each only if unchanged since it
   * was read; skipped while the last sweep is still at it (a list of many pages, thousands of deletes).
   */
  override sweep(now: number): number {
    const removed = super.sweep(now);
    // Runs elsewhere stay known (for the renew tick's list) until a list sees them end.
    for (const [key, other] of this.others) if (other.state.phase === 'cooling' && other.until <= now) this.others.delete(key);
    if (!this.sweeping) {
      this.sweeping = true;
      this.track(Promise.all([this.listShared(now, true), this.runEnds.sweep()]).finally(() => (this.sweeping = false)));
    }
    return removed;
  }

  /**
   * Waits for the claims and the writes of runs' ends made so far (with `key`,
   * only that group's), never for renewals or sweeps: a slow list must not hold answers back.
   */
  override async commit(key?: string, since = this.failures): Promise<boolean> {
    if (key === undefined) await Promise.all([...this.settling]);
    else await this.settlingByKey.get(key);
    return this.failures === since && this.durable;
  }

  /** Claims that failed so far: a claim of a batch that fails before its commit is called still counts against it. */
  override mark(): number {
    return this.failures;
  }

  override get durable(): boolean {
    return this.reachable && this.options.clock.now() - this.lastFailureAt >= FAILURE_HOLD_MS;
  }

  /**
   * Asks the API server once, at start, whether this replica can use its
   * Leases ({@link askAccess}). Until it can (no answer, or 401/403: RBAC), the store is not
   * durable, as after a failed call: `/-/ready` and new events answer 503
   * instead of a replica that looks ready refusing every claim. Never rejects.
   */
  checkAccess(): Promise<void> {
    const check = this.askAccess().catch((err: unknown) => this.failed(err));
    this.track(check);
    return check;
  }

  /** Stops renewing; Leases of runs cut short were released by the engine, cooldowns stay for the other replicas (one whose write failed is written once more, as is a delete that got no answer). */
  override async close(): Promise<void> {
    clearInterval(this.renewer);
    clearInterval(this.prober);
    // What a failed write left unwritten (a run's cooldown) is written once more, as the next renewal would have: left so, its Lease
    // would expire as a run in progress, and another replica would go on with a run that ended here.
    for (const [key, held] of this.mine) if (held.unsaved) this.write(key, held, held.record);
    while (this.pending.size > 0) await Promise.all([...this.pending]);
    // So is a delete that got no answer (a run's end, the Lease a claim may have left), as the next renew tick would have.
    this.settleDoubts();
    while (this.pending.size > 0) await Promise.all([...this.pending]);
    // A call that failed meanwhile may have started probing again.
    clearInterval(this.prober);
  }

  /** Claims the group for `run`; never rejects. A run not held locally any more gets no claim, and frees the group only while it is its own. */
  private async acquire(key: string, flow: string, run: RunProgress, now: number): Promise<ClaimResult> {
    const result = await this.acquireLease(key, flow, run, now);
    if (this.claiming.get(key) !== run) {
      const cut = this.cutWhileClaiming.get(run);
      this.cutWhileClaiming.delete(run);
      // Its run was released while the claim was in flight (a full queue): nothing acts on it. Or cut short (a shutdown): handed back.
      const held = result.claim === 'held' ? this.mine.get(key) : undefined;
      if (held && cut) this.giveBack(key, held, cut);
      else if (held) this.dropHeld(key);
      return RUNNING_ELSEWHERE;
    }
    this.claiming.delete(key);
    if (result.claim !== 'held') super.release(key);
    return result;
  }

  /** Creates the group's Lease, or takes it over when its hold is over; never rejects. */
  private async acquireLease(key: string, flow: string, run: RunProgress, now: number): Promise<ClaimResult> {
    const { identity, leaseDurationMs } = this.options;
    const name = leaseName(this.options.leasePrefix, key);
    // The event goes in from the claim on: a replica that finds the run cut short (handed back, or its holder killed) goes on with it by itself.
    const event = this.eventToKeep(key, run);
    const record: LeaseRecord = { key, flow, eventId: leaseEventId(run.event.id), phase: 'running', since: now, ...(event ? { event } : {}), holder: identity, claim: randomUUID(), renewedAt: now, leaseDurationMs, transitions: 0 };
    // A claim of this group settles any doubt about an earlier one: it reads the Lease and takes it as its own.
    const earlier = this.doubts.get(key) ?? [];
    this.doubts.delete(key);
    const attempt: ClaimAttempt = { unanswered: undefined, startedAt: this.elapsed() };
    const result = await this.claimLease(key, name, record, attempt, earlier.map((doubt) => doubt.record));
    if (result.claim !== 'held') {
      if (attempt.unanswered) this.addDoubt(key, { name, record: attempt.unanswered, until: this.elapsed() + leaseDurationMs });
      // A claim that failed settled nothing: the Lease of a run that ended here is still looked for, or it would expire as a run cut short.
      for (const doubt of earlier) if (doubt.ended) this.addDoubt(key, doubt);
    }
    // A run taken over for this very event is named by the event's own id, which the engine compares.
    if (result.claim === 'held' && result.takenOver?.eventId === record.eventId) result.takenOver.eventId = run.event.id;
    return result;
  }

  /** {@link acquireLease}'s calls. `earlier`: what the Lease may hold with no run behind it (an unconfirmed claim's, a run's that ended here). */
  private async claimLease(key: string, name: string, record: LeaseRecord, attempt: ClaimAttempt, earlier: readonly LeaseRecord[]): Promise<ClaimResult> {
    const { api, identity } = this.options;
    try {
      for (let tries = 0; tries < ATTEMPTS; tries++) {
        try {
          // Its hold counts from when this create began, not the claim: the calls before it (a 409, a read) wrote nothing.
          const sentAt = this.elapsed();
          this.hold(key, name, record, await api.create(this.leaseOf(name, record)), sentAt);
          return HELD;
        } catch (err) {
          // No answer: the create may have been applied all the same. Read it back rather than leave a Lease nobody renews.
          if (err instanceof LeaseUnreachable) attempt.unanswered = record;
          else if (!isRefused(err, 409)) throw err;
        }
        const current = await this.readOrUndefined(name);
        if (!current) continue;
        const found = this.recordOf(current);
        const at = this.options.clock.now();
        if (found && found.key !== key) throw new Error(`Lease ${name} holds group ${found.key}, not ${key}: two group keys share a name`);
        // This very claim's create, applied though its answer was lost (or the client's repeat of it met it): ours, held as created.
        if (found && sameClaim(found, record)) {
          this.hold(key, name, record, current, attempt.startedAt);
          return HELD;
        }
        // A run's Lease of this identity that this process does not know is from its previous life (same pod name): that process
        // is gone. Its cooldown still holds: that run succeeded, and a restart must not run it again.
        const over = found ? this.holdOver(current, found) || (found.phase === 'running' && found.holder === identity && !this.mine.has(key)) : this.unreadableOver(current);
        if (!over) {
          if (found) this.remember(current, found, at);
          return found?.phase === 'cooling' ? COOLING_ELSEWHERE : RUNNING_ELSEWHERE;
        }
        // The run's place stays in the Lease until the run writes its own: a replica that takes the group over from this one
        // (this one killed before that write) goes on from it as well, as does a doubt's hand-back.
        const kept = found?.place && found.eventId === record.eventId ? { place: found.place } : {};
        const next: LeaseRecord = { ...record, since: at, renewedAt: at, transitions: (found?.transitions ?? 0) + 1, ...kept };
        const sentAt = this.elapsed();
        try {
          this.hold(key, name, next, await this.takeOver(name, next, current), sentAt);
        } catch (err) {
          // Another replica took it over first: look again.
          if (isRefused(err, 409)) continue;
          // No answer: the takeover may have been applied all the same, leaving a Lease of ours that no run renews.
          if (err instanceof LeaseUnreachable) attempt.unanswered = next;
          throw err;
        }
        const interrupted = found?.phase === 'running' && !earlier.some((left) => sameClaim(found, left));
        if (!interrupted) return HELD;
        const takenOver: TakenOver = { holder: found.holder, handedBack: handedBack(found), eventId: found.eventId, since: found.since };
        if (found.holder === identity && this.stopped.delete(name)) takenOver.stoppedHere = true;
        return { claim: 'held', takenOver: found.place ? { ...takenOver, place: found.place } : takenOver };
      }
      return RUNNING_ELSEWHERE;
    } catch (err) {
      // Refused (403: RBAC) or unanswered, the claim failed: commits in flight must say so.
      this.failures++;
      if (isOutage(err)) this.failed(err);
      this.repeatedLog.log('claim', 'error', { err, groupKey: key, lease: this.shownLease(name) }, 'could not claim the group in the shared run-state store; the event is refused so that it is sent again', 'alsoRefusedSinceLastLine');
      return UNAVAILABLE;
    }
  }

  /**
   * Replaces `current` with `next`. A 409 may be this very update, applied though its answer was lost (the client's repeat
   * met it): read back as written, it is ours, and the run it took over is the one `current` held, not one of this replica's.
   */
  private async takeOver(name: string, next: LeaseRecord, current: V1Lease): Promise<V1Lease> {
    try {
      return await this.options.api.replace(this.leaseOf(name, next, current));
    } catch (err) {
      if (!isRefused(err, 409)) throw err;
      const lease = await this.readOrUndefined(name);
      const found = lease && this.recordOf(lease);
      if (found && sameClaim(found, next)) return lease;
      throw err;
    }
  }

  /** The Lease for `record` ({@link toLease}), its times on the wall clock. */
  private leaseOf(name: string, record: LeaseRecord, base?: V1Lease): V1Lease {
    return toLease(name, record, base, this.wallAhead());
  }

  /** The record a Lease holds ({@link fromLease}), its times on this process's clock. */
  private recordOf(lease: V1Lease): LeaseRecord | undefined {
    return fromLease(lease, this.wallAhead());
  }

  private shownLease(name: string): string {
    return this.options.showLease?.(name) ?? name;
  }

  /**
   * Whether a Lease no longer holds its group: a cooldown that ended, or a run
   * whose Lease this replica has seen unchanged for its lease duration by its
   * own monotonic clock (as client-go's leader election judges it), so a
   * holder's clock running behind or ahead of this one never ends its hold early.
   */
  private holdOver(lease: V1Lease, record: LeaseRecord): boolean {
    if (record.phase === 'cooling') return this.coolingUntil(record) <= this.options.clock.now();
    return handedBack(record) || this.unchangedFor(lease) >= record.leaseDurationMs;
  }

  /**
   * When the cooldown `record` holds ends, on this process's clock. One this replica began and still holds: the end it
   * keeps, not the Lease's read back, which a step of the wall clock since it was written moves by the step (2 h forward:
   * over at once, and the sweep deleted the Lease that held the group on every other replica).
   */
  private coolingUntil(record: LeaseRecord): number {
    const held = record.holder === this.options.identity ? this.mine.get(record.key)?.record : undefined;
    return held?.phase === 'cooling' && held.eventId === record.eventId ? held.until! : record.until!;
  }

  /**
   * Whether a Lease of this backend that this version cannot read no longer holds its group: one a later
   * version wrote, met beside it in a rolling update, may be a run in progress there. So it holds as a
   * run's does, until seen unchanged for its own `leaseDurationSeconds` (this replica's `leaseDuration`
   * at least), rather than be taken over or swept at once and its group run twice.
   */
  private unreadableOver(lease: V1Lease): boolean {
    return this.unchangedFor(lease) >= Math.max((lease.spec?.leaseDurationSeconds ?? 0) * 1_000, this.options.leaseDurationMs);
  }

  /** How long this replica has seen the Lease at its present resourceVersion (0 when it is new to it). */
  private unchangedFor(lease: V1Lease): number {
    const name = lease.metadata?.name ?? '';
    const version = lease.metadata?.resourceVersion ?? '';
    const now = this.elapsed();
    const seen = this.observed.get(name);
    if (seen?.version === version) return now - seen.at;
    this.observed.set(name, { version, at: now });
    return 0;
  }

  /** Reads a Lease; an answer (404 included) tells that the API server can be reached, before what was read is judged. */
  private async readOrUndefined(name: string): Promise<V1Lease | undefined> {
    try {
      const lease = await this.options.api.read(name);
      this.answered();
      return lease;
    } catch (err) {
      if (!isRefused(err, 404)) throw err;
      this.answered();
      return undefined;
    }
  }

  /** `writtenFrom`: when the write that made the Lease began (monotonic), the earliest the others could see it. */
  private hold(key: string, name: string, record: LeaseRecord, lease: V1Lease, writtenFrom: number): void {
    this.answered();
    this.others.delete(key);
    this.observed.delete(name);
    this.mine.set(key, { name, lease, record, writing: Promise.resolve(), unsaved: false, confirmedAt: writtenFrom, lost: new AbortController() });
  }

  /** Caches a group another replica holds: a cooldown until its end, a run in progress for one renew interval (it may fail and free the group; the renew tick's list looks again). */
  private remember(lease: V1Lease, record: LeaseRecord, now: number): void {
    this.answered();
    // Never past the moment this replica would find the run's Lease expired: the next event then claims the group.
    const until = record.phase === 'cooling' ? record.until! : now + Math.min(this.options.renewIntervalMs, record.leaseDurationMs - this.unchangedFor(lease));
    this.others.set(record.key, { state: stateOf(record), until });
  }

  /**
   * Writes `record` into the Lease after the writes before it, guarded by the resourceVersion they left. `settles`: {@link commit}
   * waits for it; `recreate: false`: a Lease found deleted is lost, not created again ({@link saveHeld}).
   */
  private write(key: string, held: HeldLease, record: LeaseRecord, { settles = false, recreate = true }: { settles?: boolean; recreate?: boolean } = {}): void {
    held.record = record;
    const written = held.writing.then(async () => {
      if (this.mine.get(key) !== held) return;
      // Measured on the monotonic clock, as the others measure expiry: a step of the wall clock must not extend the hold.
      const startedAt = this.elapsed();
      try {
        held.lease = await this.saveHeld(held, recreate);
        held.confirmedAt = Math.max(held.confirmedAt, startedAt);
        held.unsaved = false;
        this.answered();
      } catch (err) {
        if (err instanceof LeaseLost) {
          this.loseHold(key, held, `another replica (${err.holder || 'unknown'}) took the Lease over`);
          return;
        }
        if (isRefusedForGood(err)) return this.writeRefused(key, held, err);
        held.unsaved = true;
        this.writeFailed(err, key, held.name, 'it is written again at each renewal');
      }
    });
    held.writing = written;
    this.track(written, settles ? key : undefined);
  }

  /**
   * Writes `held.record`. A 409 may be our own earlier write that got no
   * answer but was applied: when the Lease is still ours, write again on top
   * of it; a Lease deleted meanwhile (swept as expired) is created again, unless `recreate` is false.
   * @throws LeaseLost when another replica holds it now, or it is gone and `recreate` is false.
   */
  private async saveHeld(held: HeldLease, recreate = true): Promise<V1Lease> {
    const { api, identity } = this.options;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      try {
        return await api.replace(this.heldLease(held, recreate), { held: true });
      } catch (err) {
        if (!isRefused(err, 409)) throw err;
      }
      const current = await this.readOrUndefined(held.name);
      if (!current) {
        if (!recreate) throw new LeaseLost('');
        try {
          return await api.create(this.leaseOf(held.name, held.record));
        } catch (err) {
          if (!isRefused(err, 409)) throw err;
          continue;
        }
      }
      const holder = this.recordOf(current)?.holder;
      if (holder !== identity) throw new LeaseLost(holder ?? '');
      held.lease = current;
    }
    throw new LeaseLost('');
  }

  /**
   * `held` as a write sends it. Without `recreate` it also names the Lease's uid: the API server creates a Lease on an update
   * when there is none (AllowCreateOnUpdate), and a uid precondition makes that a 409 instead.
   */
  private heldLease(held: HeldLease, recreate: boolean): V1Lease {
    const lease = this.leaseOf(held.name, held.record, held.lease);
    const uid = held.lease.metadata?.uid;
    if (!recreate && uid) lease.metadata!.uid = uid;
    return lease;
  }

  private deleteLease(held: HeldLease): void {
    this.track(held.writing.then(() => this.deleteHeld(held)), held.record.key);
  }

  /**
   * Deletes the Lease of a run that ended here (it failed, or succeeded with no cooldown), as this replica last saw it. A 409
   * may be this replica's own write, applied though it got no answer: read back still as the run left it, the Lease is deleted
   * as read. No answer, or an API server that could not serve it (5xx, 429: {@link isOutage}): looked for again at each renew
   * tick ({@link settleDoubt}). Left, the Lease expired as a run cut short, and a replica went on with that run, which had ended.
   */
  private async deleteHeld(held: HeldLease): Promise<void> {
    const key = held.record.key;
    // What the Lease holds as this replica last wrote or read it: `record` may be a write the API server refused (a cooldown,
    // see writeRefused), while the Lease is still the run in progress, which must not be left to expire as one cut short.
    const left = this.recordOf(held.lease) ?? held.record;
    try {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        const { uid, resourceVersion } = held.lease.metadata ?? {};
        try {
          await this.options.api.delete(held.name, { uid: uid!, resourceVersion: resourceVersion! });
          this.answered();
          return;
        } catch (err) {
          if (!isRefused(err, 409)) throw err;
        }
        const current = await this.readOrUndefined(held.name);
        const found = current && this.recordOf(current);
        // Gone, or someone else's now.
        if (!found || !sameClaim(found, left)) return;
        held.lease = current;
      }
    } catch (err) {
      // 404: it is gone; another refusal (403: RBAC): it expires by itself, and is then taken over or swept.
      if (!isOutage(err)) return;
      this.failed(err);
      if (left.phase === 'running') this.addDoubt(key, { name: held.name, record: left, until: Infinity, ended: true });
    }
  }

  /** Gives the hold up here and tells its run in progress, if any, to stop. */
  private loseHold(key: string, held: HeldLease, why: string): void {
    if (this.mine.get(key) === held) this.mine.delete(key);
    const running = held.record.phase === 'running';
    if (running) this.stopped.add(held.name);
    held.lost.abort(new Error(`lost the hold on group ${key}: ${why}`));
    this.options.logger.error({ groupKey: key, lease: this.shownLease(held.name), runInProgress: running }, `lost the Lease of a group this replica holds: ${why}${running ? '; its run is stopped' : ''}`);
  }

  /**
   * Gives up the hold of a run in progress whose renewals went unconfirmed for
   * so long that its Lease may expire for the others before the next tick:
   * the run stops rather than run beside another replica's. The next tick
   * comes renewIntervalMs later, and half an interval more is left for it to
   * come late; a confirmed renewal is renewIntervalMs (and a late tick's delay)
   * old at the next tick, so with renewIntervalMs at most a third of the lease
   * that slack never stops a run that renews. `at`: monotonic ms. True when the hold was given up.
   */
  private loseHoldIfUnconfirmed(key: string, held: HeldLease, at: number, when = ''): boolean {
    if (!this.unconfirmedTooLong(held, at)) return false;
    this.loseHold(key, held, `its renewals went unconfirmed for ${Math.round(at - held.confirmedAt)} ms${when} (leaseDuration ${this.options.leaseDurationMs} ms)`);
    return true;
  }

  /**
   * Whether, at `at` (monotonic ms), the renew tick is overdue by more than half an interval: this process did not run
   * meanwhile (stopped, or starved of CPU), so its renewals went unconfirmed because they were never sent, not because
   * the API server did not answer them.
   */
  private stalledSince(at: number): boolean {
    return at - this.tickedAt > 1.5 * this.options.renewIntervalMs;
  }

  /**
   * On waking from a stall with a hold whose renewals went unconfirmed too long: renews it (guarded by the resourceVersion
   * this replica last saw), and gives it up only when that renewal is not confirmed. Given up at once, as before, the run's
   * call was cancelled though its answer (a plugin that acted) had come in during the stall, and the group's next event ran
   * the plugin again. Confirmed, the Lease is proved unchanged since this replica's last write: no other replica took it
   * over, nor can before it expires again, so the run goes on.
   */
  private reconfirm(key: string, held: HeldLease, at: number): Promise<void> {
    // Expired for the others, a Lease found deleted may have been taken over by another replica, whose run ended there and
    // deleted it: created again, it would prove nothing, and this run would act a second time.
    this.write(key, held, { ...held.record, renewedAt: this.options.clock.now() }, { recreate: false });
    const unconfirmedMs = Math.round(at - held.confirmedAt);
    const judged = held.writing.then(() => {
      held.reconfirming = undefined;
      if (this.mine.get(key) !== held) return;
      if (held.confirmedAt >= at) {
        this.repeatedLog.log('reconfirmed', 'warn', { groupKey: key, lease: this.shownLease(held.name), unconfirmedMs }, 'this process did not run for longer than its Lease renewals allow (stopped, or starved of CPU): the Lease was renewed on waking, unchanged, so its run goes on', 'alsoRenewedSinceLastLine');
      } else this.loseHold(key, held, `its renewals went unconfirmed for ${unconfirmedMs} ms while this process did not run (leaseDuration ${this.options.leaseDurationMs} ms), and the renewal made on waking was not confirmed either`);
    });
    held.reconfirming = judged;
    return judged;
  }

  /** True when `held` is a run in progress whose renewals are, at `at` (monotonic ms), unconfirmed too long (see {@link loseHoldIfUnconfirmed}). */
  private unconfirmedTooLong(held: HeldLease, at: number): boolean {
    const { leaseDurationMs, renewIntervalMs } = this.options;
    return held.record.phase === 'running' && at - held.confirmedAt > leaseDurationMs - 1.5 * renewIntervalMs;
  }

  /** Renews the Leases of runs in progress, and writes again what could not be written. */
  private renew(): void {
    const now = this.options.clock.now();
    const at = this.elapsed();
    const stalled = this.stalledSince(at);
    this.tickedAt = at;
    for (const [key, held] of this.mine) {
      if (held.reconfirming) continue;
      if (stalled && this.unconfirmedTooLong(held, at)) {
        void this.reconfirm(key, held, at);
        continue;
      }
      if (this.loseHoldIfUnconfirmed(key, held, at)) continue;
      if (held.record.phase === 'running') this.write(key, held, { ...held.record, renewedAt: now });
      else if (held.unsaved) this.write(key, held, held.record);
      else if (heldUntil(held.record) <= now) this.mine.delete(key);
    }
    this.settleDoubts();
    if (!this.listing && this.knowsRunsElsewhere()) {
      this.listing = true;
      this.track(this.listShared(now, false).finally(() => (this.listing = false)));
    }
  }

  /** Adds a doubt beside those the group has already: neither settles the other. */
  private addDoubt(key: string, doubt: Doubt): void {
    this.doubts.set(key, [...(this.doubts.get(key) ?? []), doubt]);
  }

  /** Looks for the Lease of every doubt ({@link settleDoubt}), as a renew tick does. */
  private settleDoubts(): void {
    for (const [key, doubts] of this.doubts) for (const doubt of doubts) this.track(this.settleDoubt(key, doubt));
  }

  /**
   * Looks for the Lease of a claim whose create or takeover got no answer: found as that
   * claim left it, it has no run behind it and is deleted (only as read), or handed back when it
   * kept a run's place, so other replicas need not wait for it to expire. Looked for until an orphan
   * would have expired anyway, or until it is known to be someone else's.
   */
  private async settleDoubt(key: string, doubt: Doubt): Promise<void> {
    const done = (): void => {
      const left = this.doubts.get(key)?.filter((d) => d !== doubt) ?? [];
      if (left.length > 0) this.doubts.set(key, left);
      else this.doubts.delete(key);
    };
    if (this.elapsed() > doubt.until) return done();
    try {
      const current = await this.readOrUndefined(doubt.name);
      this.answered();
      const found = current && this.recordOf(current);
      // Not (yet) there: a create still on its way may land; look again next time. A run's end: deleted already.
      if (!current) return doubt.ended ? done() : undefined;
      if (found && sameClaim(found, doubt.record) && !this.mine.has(key)) {
        // A takeover that kept a run's place hands the Lease back with it, as it was before: the event's re-send goes on from there.
        const handingBack = found.place && !doubt.ended;
        if (handingBack) await this.options.api.replace(this.leaseOf(doubt.name, handBack(found, this.options.clock.now()), current));
        else await this.options.api.delete(doubt.name, { uid: current.metadata!.uid!, resourceVersion: current.metadata!.resourceVersion! });
        if (doubt.ended) this.options.logger.info({ groupKey: key, lease: this.shownLease(doubt.name) }, 'deleted the Lease of a run that ended here, whose delete got no answer');
        else this.options.logger.warn({ groupKey: key, lease: this.shownLease(doubt.name) }, `${handingBack ? 'handed back (with its run\'s place) the Lease of a takeover' : 'deleted the Lease of a claim'} whose write got no answer but was applied; the event was refused and is sent again`);
      }
      done();
    } catch (err) {
      // Refused for itself (403, 404, 409): looking again would not help. Not served (5xx, 429): looked for again, as with no answer.
      if (!isOutage(err)) done();
      else this.failed(err);
    }
  }

  /**
   * Lists every Lease of the backend: notes the version of each this replica
   * sees (expiry counts from it), refreshes the groups it knows other replicas
   * hold (a run that ended there is seen cooling without a read of its own),
   * and keeps the list for the status API. `sweep`: also deletes those whose
   * hold is over, each only as it was listed.
   */
  private async listShared(now: number, sweep: boolean): Promise<void> {
    const started = ++this.listsStarted;
    let leases: V1Lease[];
    try {
      leases = await this.options.api.list(LEASE_SELECTOR);
      this.answered();
    } catch (err) {
      this.failed(err);
      return;
    }
    // Lists overlap (the sweep's, the renew tick's, the status API's): one answered after a later one read the Leases as they
    // were before it, and would bring back a run that ended meanwhile. It still deletes what it found over (each delete is
    // guarded by the version it read), but teaches nothing.
    if (started > this.listApplied) this.listApplied = started;
    // Checked at each use: a sweep's deletes let later lists be answered meanwhile.
    const latest = (): boolean => started === this.listApplied;
    const { identity, leasePrefix } = this.options;
    const records: ListedLease[] = [];
    const listed = new Set<string>();
    for (const lease of leases) {
      const record = this.recordOf(lease);
      // Every installation's Leases carry the same labels: one with another leasePrefix in this namespace keeps run state of its own.
      if (record && lease.metadata?.name !== leaseName(leasePrefix, record.key)) continue;
      listed.add(lease.metadata?.name ?? '');
      if (record && !this.holdOver(lease, record)) {
        records.push({ record, expiresAt: record.phase === 'running' ? this.elapsed() + record.leaseDurationMs - this.unchangedFor(lease) : Infinity });
        if (record.holder !== identity && latest()) this.remember(lease, record, now);
        continue;
      }
      if (!record && !this.unreadableOver(lease)) continue;
      // Over: the next event of the group claims it (and reports a run cut short).
      if (record && record.holder !== identity) this.others.delete(record.key);
      // A run cut short (handed back, or its holder stopped renewing) with its event: this replica claims it now, as that
      // event sent again would (one claim wins) and goes on with it.
      const event = record?.phase === 'running' ? leaseEventOf(record, this.wallAhead()) : undefined;
      if (event && !this.mine.has(record!.key)) this.cutShortTo?.({ key: record!.key, flow: record!.flow, ...event });
      const { name, uid, resourceVersion } = lease.metadata ?? {};
      // Our own run in progress is renewed, not swept, however late the renewal; a run cut short keeps its place and its event
      // a while: deleted when no replica had room for it at this list, the run would wait for its event to be sent again.
      if (!sweep || (record && this.mine.get(record.key)?.record.phase === 'running') || ((record?.place || event) && now - heldUntil(record!) < CUT_SHORT_KEPT_MS)) continue;
      // A claim of this replica is on its way (the offer's just above, or an event's): it takes the Lease over and reports the
      // run cut short there; deleted under it, the Lease would be created anew and that run never reported interrupted.
      if (record && this.claiming.has(record.key)) continue;
      const deleted = await this.options.api.delete(name!, { uid: uid!, resourceVersion: resourceVersion! }).then(() => true, () => false);
      // Kept all that time, a run cut short went on on no replica (none has a flow of that name taking its event, or room): given up, as the journal gives up a run it cannot resume.
      if (deleted && (record?.place || event)) this.options.logger.error({ flow: record!.flow, groupKey: record!.key, eventId: record!.eventId, lease: this.shownLease(name!) }, `run not resumed: no replica went on with this run cut short within ${CUT_SHORT_KEPT_MS / 60_000} min; its Lease is deleted, and the run goes on only when its event is sent again`);
    }
    for (const name of this.observed.keys()) if (!listed.has(name)) this.observed.delete(name);
    for (const name of this.stopped) if (!listed.has(name)) this.stopped.delete(name);
    // A run elsewhere whose Lease is gone failed or was cut short there: its group is free.
    for (const [key, other] of this.others) if (other.state.phase !== 'cooling' && !listed.has(leaseName(this.options.leasePrefix, key))) this.others.delete(key);
    if (latest()) this.shared = records;
  }

  /** Whether this replica knows of a run in progress on another replica: its Lease is then listed every renew interval, so its holder's end is seen in time. */
  private knowsRunsElsewhere(): boolean {
    for (const other of this.others.values()) if (other.state.phase !== 'cooling') return true;
    return false;
  }

  /** Keeps `work` until it ends, for {@link close}; with `settles`, the group it settles, {@link commit} waits for it too. Returns `work`. */
  private track<T>(work: Promise<T>, settles?: string): Promise<T> {
    this.pending.add(work);
    if (settles !== undefined) {
      this.settling.add(work);
      this.settlingByKey.set(settles, work);
    }
    void work.finally(() => {
      this.pending.delete(work);
      this.settling.delete(work);
      if (settles !== undefined && this.settlingByKey.get(settles) === work) this.settlingByKey.delete(settles);
    });
    return work;
  }

  private answered(): void {
    if (this.reachable) return;
    this.reachable = true;
    // A Lease seen unchanged while this replica could not reach the API server proves nothing: its holder could not write
    // to it either (a run that ended there could not record its cooldown). Its leaseDuration counts again from now.
    this.observed.clear();
    clearInterval(this.prober);
    this.prober = undefined;
    this.options.logger.info('the shared run-state store can be used again');
  }

  /**
   * A write of a held Lease that the API server refused for itself ({@link isRefusedForGood}): made again at each renewal, it
   * was refused at each for as long as the replica ran, and a cooldown's Lease, left a run in progress that no longer renews,
   * expired for the other replicas, one of which went on with that run, which had succeeded. The hold is given up instead: a
   * run in progress stops before its next plugin call, its Lease left to expire with what it held before (another replica
   * goes on from there), and a cooldown's Lease is deleted (the cooldown then holds on this replica only).
   */
  private writeRefused(key: string, held: HeldLease, err: LeaseRefused): void {
    if (held.record.phase === 'running') {
      this.failures++;
      return this.loseHold(key, held, `the API server refused a write of its Lease (HTTP ${err.code}), and would refuse it again`);
    }
    this.writeFailed(err, key, held.name, 'the Lease is deleted, so that no replica takes the run that ended here for one cut short; the group\'s cooldown holds on this replica only');
    if (this.mine.get(key) === held) this.mine.delete(key);
    this.deleteLease(held);
  }

  /**
   * A write of a held Lease that failed; `then`: what becomes of the Lease. Refused for itself (422 invalid, 404 namespace gone), it counts against
   * commits as a failed claim does but is no outage: the API server answers, so new events are still taken.
   */
  private writeFailed(err: unknown, key: string, name: string, then: string): void {
    if (isOutage(err) || isDenied(err)) return this.failed(err);
    this.failures++;
    const { code } = err as LeaseRefused;
    this.repeatedLog.log(`write ${code}`, 'error', { err, groupKey: key, lease: this.shownLease(name) }, `the API server refused a write of a Lease this replica holds (HTTP ${code}): ${then}`, 'alsoRefusedSinceLastLine');
  }

  private failed(err: unknown): void {
    this.failures++;
    this.lastFailureAt = this.options.clock.now();
    if (!this.reachable) return;
    this.reachable = false;
    const why = isDenied(err) ? 'refuses this replica its Leases (RBAC: its service account needs get, list, create, update and delete on leases in the namespace)' : 'cannot be reached';
    this.options.logger.error({ err }, `the shared run-state store ${why}: new events get 503 until it can; runs in progress go on`);
    this.prober = setInterval(() => void this.probe(), PROBE_MS).unref();
  }

  /** The Lease the access check and the probe read and create as a dry run: its 404 (409) is an answer as good as any. */
  private get probeLease(): string {
    return `${this.options.leasePrefix}probe`;
  }

  /**
   * Reads the probe Lease, then creates it as a dry run (nothing is stored): a claim needs both
   * `get` and `create`, and a Role that grants `get` alone would let a read through while every
   * claim is refused. Resolves once both were answered other than 401, 403, 429 or 5xx (a 404 or a
   * 409 is an answer); else rejects with the error: a throttled API server ({@link isOutage}) would
   * refuse the claims as well.
   */
  private async askAccess(): Promise<void> {
    const answered = (err: unknown): void => {
      if (isOutage(err) || isDenied(err)) throw err;
    };
    await this.options.api.read(this.probeLease).catch(answered);
    await this.options.api.create({ metadata: { name: this.probeLease }, spec: {} }, { dryRun: true }).catch(answered);
  }

  /** Asks for access again ({@link askAccess}): can it be reached, and may this replica use it? */
  private async probe(): Promise<void> {
    try {
      await this.askAccess();
      this.answered();
    } catch {
      this.lastFailureAt = this.options.clock.now();
    }
  }
}

/** Another replica holds a Lease this one thought it held. */
class LeaseLost extends Error {
  constructor(readonly holder: string) {
    super(`the Lease is held by ${holder || 'another replica'}`);
  }
}

const isRefused = (err: unknown, code: number): boolean => err instanceof LeaseRefused && err.code === code;

/** A 4xx that refuses the call for itself (422 invalid, 404 its namespace gone), not this replica nor for now: made again as it is, it is refused again. */
const isRefusedForGood = (err: unknown): err is LeaseRefused => err instanceof LeaseRefused && !isOutage(err) && !isDenied(err);

/** Whether a Lease holds the claim `record` made (named by {@link LeaseRecord.claim}), unchanged: the same holder and event, still running. */
const sameClaim = (found: LeaseRecord, record: LeaseRecord): boolean =>
  found.phase === 'running' && found.holder === record.holder && found.eventId === record.eventId && found.claim !== undefined && found.claim === record.claim;

/** A Lease's record as the group state the engine and the status API read. */
function stateOf(record: LeaseRecord): GroupState {
  return {
    key: record.key,
    flow: record.flow,
    phase: record.phase,
    eventId: record.eventId,
    since: record.since,
    ...(record.phase === 'cooling' ? { until: record.until! } : {}),
    replica: record.holder,
  };
}
