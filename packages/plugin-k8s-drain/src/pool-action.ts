import { Code, deadlineOn, labelsOf, PluginError, rememberingRecent, wallTimeOf, type CloudEvent, type HandleContext, type HandleResult } from '@hollowtrees/grpcplugin';
import type { V1Node } from '@kubernetes/client-node';
import { Deadline } from './deadline.js';
import { DrainIncompleteError } from './drain-incomplete-error.js';
import type { KubeApi } from './kube-api.js';
import type { NodeDrainer, NodeRetry } from './node-drain.js';
import { describeNodeRef, nodeRefOf, type NodeRef } from './node-lookup.js';
import type { ResolvedDrainOptions } from './options.js';
import { drainPool, holdForSurge, recallRecordedCordons, uncordonNodes, type PoolDrainOutcome } from './pool-drain.js';
import type { PoolSettings } from './pool-options.js';
import { heldForNewerSurge } from './pool-cordon-record.js';
import { PoolRegistry, type PoolRun } from './pool-registry.js';
import { listPoolNodes, poolOfNode, poolOfSelector, poolOfZoneAndType, POOL_EVENT_LABELS, type Pool } from './pool-selector.js';
import { PoolResolutionMarker } from './pool-resolution-marker.js';
import { isResolution } from './resolution.js';

/** Events without a `time` whose first call is remembered; past it the oldest is forgotten. */
const MAX_UNTIMED_EVENTS = 10_000;

/** How the pool action reaches the rest of the plugin. */
export interface PoolActionDeps {
  api: KubeApi;
  drainer: NodeDrainer;
  /** Finds the node an event names, as the per-instance drain does (cache, then API server). */
  findNode(ref: NodeRef, retry: NodeRetry): Promise<V1Node | undefined>;
  options: ResolvedDrainOptions;
}

/** One pool-mode call, as the steps of {@link PoolAction} see it. */
interface PoolCall {
  readonly event: CloudEvent;
  readonly context: HandleContext;
  readonly settings: PoolSettings;
  readonly pool: Pool;
  /** Epoch milliseconds on the wall clock: the event's time (when the call came, if it has none or a later one). */
  readonly time: number;
  /** Epoch milliseconds on the plugin's clock: when the call came, and when it must have answered. */
  readonly started: number;
  readonly at: number;
  /** Bounds this call's own waits. */
  readonly deadline: Deadline;
}

/**
 * The pool action (`mode: pool`): a surge event drains the event's pool with
 * pacing ({@link drainPool}), one drain per pool however many calls ask for it;
 * a resolution event stops that pool's drain, and makes every surge event
 * older than it drain nothing. Answers `pool`, `nodes_selected`,
 * `nodes_drained`, `nodes_left`, `nodes_released`, `stopped_early`, `duration_ms`.
 */
export class PoolAction {
  private readonly registry = new PoolRegistry();
  /**
   * When each event without a `time` first came, by source and id: the time of all its calls, so core's retry of a
   * surge is not newer than a resolution that came between (it would drain the pool again).
   */
  // Wall-clock times, as an event's own and the ones the nodes' and the marker's annotations hold for other processes.
  private readonly firstCame = rememberingRecent(() => wallTimeOf(this.deps.options.clock, this.deps.options.clock.now()), MAX_UNTIMED_EVENTS);

  /** The pools' resolutions as every plugin process sees them (see {@link PoolResolutionMarker}). */
  private readonly marker: PoolResolutionMarker;

  constructor(private readonly deps: PoolActionDeps) {
    this.marker = new PoolResolutionMarker(deps.api, deps.options.poolNamespace, deps.options.dryRun);
  }

  /**
   * A per-instance drain has cordoned `node`: it is no pool drain's to undo any more. Answers, when an
   * uncordon of it is in flight already, what settles once that has landed (see {@link PoolRegistry.forgetNode}).
   */
  takenOver(node: string): Promise<void> | undefined {
    return this.registry.forgetNode(node);
  }

  async handle(event: CloudEvent, context: HandleContext, settings: PoolSettings): Promise<HandleResult> {
    const o = this.deps.options;
    const started = o.clock.now();
    // A pool drain takes as long as the flow gives the plugin; without a call deadline, one node's longest drain.
    const at = context.deadline ? deadlineOn(o.clock, context.deadline) - o.replyMarginMs : started + o.maxDrainMs;
    if (at <= started) throw new PluginError(Code.FailedPrecondition, `no time left for a pool drain: the call's deadline ${new Date(wallTimeOf(o.clock, at)).toISOString()} (less the reply margin) has passed`);
    const deadline = new Deadline(at, context.signal, o.clock);
    try {
      const pool = await this.poolOf(event, settings, { deadline, backoff: o.backoff });
      if (!pool) return { status: 'skipped', message: 'the node the event names is not in this cluster; nothing to drain' };
      // Never later than the call: an event cannot have happened after it came. A time ahead of ours (a sender's fast
      // clock, a hostile event) would make a resolution hold off the pool's every surge until a restart, or a surge unstoppable.
      const time = Math.min(eventTime(event) ?? this.firstCame(`${event.source}\n${event.id}`), wallTimeOf(o.clock, started));
      const call: PoolCall = { event, context, settings, pool, time, started, at, deadline };
      return await (isResolution(event) ? this.resolve(call) : this.surge(call));
    } finally {
      deadline.dispose();
    }
  }

  /** The pool of the event: the flow's selector, else the event's zone and instance type, else those of the node it names. */
  private async poolOf(event: CloudEvent, settings: PoolSettings, retry: NodeRetry): Promise<Pool | undefined> {
    if (settings.selector !== undefined) return poolOfSelector(settings.selector);
    const labels = labelsOf(event);
    const zone = labels[POOL_EVENT_LABELS.zone];
    const instanceType = labels[POOL_EVENT_LABELS.instanceType];
    if (zone && instanceType) return poolOfZoneAndType(zone, instanceType, `event labels ${POOL_EVENT_LABELS.zone}, ${POOL_EVENT_LABELS.instanceType}`);
    const o = this.deps.options;
    if (!labels[o.nodeLabel] && !labels[o.instanceIdLabel]) {
      throw new PluginError(
        Code.InvalidArgument,
        `the event names no pool: it has neither "${POOL_EVENT_LABELS.zone}" and "${POOL_EVENT_LABELS.instanceType}" labels nor a "${o.nodeLabel}" or "${o.instanceIdLabel}" label, and the flow's plugin config sets no selector`,
      );
    }
    const ref = nodeRefOf(labels, o);
    const node = await this.deps.findNode(ref, retry);
    if (node) return poolOfNode(node);
    if (o.nodeNotFound === 'skip') return undefined;
    throw new PluginError(Code.NotFound, `${describeNodeRef(ref)} is not in this cluster, so the event's pool is unknown`);
  }

  /**
   * Reads the pool's resolution marker: a resolution another plugin process took (or this one, before a restart)
   * counts as one taken here, and stops the drain in progress of a surge it ends. True when it took one from the marker
   * (later than any taken here).
   */
  private async learnResolution(pool: Pool, retry: NodeRetry): Promise<boolean> {
    const resolvedAt = await this.marker.resolvedAt(pool.key, retry);
    // Only a later one: a stop already made keeps the stopping call's deadline for its uncordons.
    if (resolvedAt === undefined || resolvedAt <= (this.registry.resolvedAt(pool.key) ?? -Infinity)) return false;
    this.registry.resolve(pool.key, resolvedAt);
    return true;
  }

  private async surge(call: PoolCall): Promise<HandleResult> {
    const { pool, time, started, deadline } = call;
    for (;;) {
      const resolvedAt = this.registry.resolvedAt(pool.key);
      if (resolvedAt !== undefined && time <= resolvedAt) return this.alreadyResolved(pool, time, resolvedAt, started);
      const { run, joined } = this.registry.startOrJoin(pool.key, time, () => this.start(call));
      if (!joined) return run.outcome;
      // Stopped by a resolution older than this surge, and still undoing its cordons: its answer is not this surge's.
      // Once it has ended, this surge drains the pool anew (or joins the drain another call has started since).
      const winding = run.stopped;
      this.deps.options.logger.info(winding ? 'pool drain stopped by a resolution older than this surge: draining anew once it has undone its cordons' : 'pool drain already in progress: waiting for it', { pool: pool.name });
      // Adopted by this surge: its cordons say so on the nodes, which a resolution in another plugin process reads.
      if (!winding) await holdForSurge(this.deps.drainer, this.registry.memory(pool.key), { pool: pool.key, surgeAt: run.since }, { deadline, backoff: this.deps.options.backoff, logger: this.deps.options.logger });
      try {
        const outcome = await deadline.race(winding ? run.outcome.then(() => undefined, () => undefined) : run.outcome);
        // Its cordons were undone for an older surge than this one (that surge's resolution, in another plugin process):
        // the pool is not cordoned for this surge. Drained anew, which reads the marker first (this surge may be resolved too).
        if (outcome) {
          if ((run.undoneFor ?? Infinity) >= time) return outcome;
          this.deps.options.logger.info('pool drain joined had its cordons undone for an older surge: draining anew', { pool: pool.name });
        }
      } catch (err) {
        // The drain lives on the call that began it, and that call was cancelled (its client gave up, its stream went away):
        // this call was not, and its drain may be tried again (ABORTED is retried; CANCELLED would fail its run).
        if (err instanceof PluginError && err.code === Code.Canceled && !deadline.signal.aborted) {
          throw new PluginError(Code.Aborted, `the drain of pool ${pool.name}, begun by another call, ended with that call's cancel (${err.message}): try again`, { cause: err });
        }
        if (err instanceof PluginError) throw err;
        const what = winding ? 'stopped by a resolution, was still undoing its cordons' : 'begun by another call, was still in progress';
        throw new PluginError(Code.DeadlineExceeded, `the drain of pool ${pool.name}, ${what} at this call's deadline`);
      }
    }
  }

  /** The answer to a surge of time `time` that a resolution at `resolvedAt` has ended before its drain began. */
  private alreadyResolved(pool: Pool, time: number, resolvedAt: number, started: number): HandleResult {
    this.deps.options.logger.info('pool surge already resolved: not draining', { pool: pool.name, surgeAt: iso(time), resolvedAt: iso(resolvedAt) });
    return {
      status: 'skipped',
      message: `the surge in pool ${pool.name} (${iso(time)}) was resolved at ${iso(resolvedAt)}: nothing drained`,
      attributes: attributesOf(pool, undefined, started, this.deps.options.clock.now(), true),
    };
  }

  private start(call: PoolCall): PoolRun {
    const { pool, event, settings, context, at, started, deadline } = call;
    const { api, drainer, options: o } = this.deps;
    const stop = new AbortController();
    // The latest surge the drain is for: a newer one may join it (see PoolRun.adopt).
    let since = call.time;
    // Once it has ended: the oldest surge a cordon of it was held for when someone else undid it (see PoolRun.undoneFor).
    let undoneFor: number | undefined;
    // The latest resolution that stopped the drain: its cordons for surges up to then are undone.
    let stoppedBy = { resolvedAt: -Infinity, deadline: undefined as Deadline | undefined };
    const outcome = (async (): Promise<HandleResult> => {
      // The first call's deadline: it waits for this outcome, so the deadline outlives the listing.
      const nodes = await listPoolNodes(api, pool, { deadline, backoff: o.backoff });
      if (nodes.length === 0) {
        return { status: 'skipped', message: `no node in pool ${pool.name}; nothing to drain`, attributes: attributesOf(pool, emptyOutcome(), started, o.clock.now(), false) };
      }
      // Resolved in another plugin process (or in this one before a restart: core's retry of a drain that ran out of time).
      // Whether the marker stopped it, not a resolution taken here (before or while the marker was read).
      const resolvedElsewhere = await this.learnResolution(pool, { deadline, backoff: o.backoff });
      if (stop.signal.aborted) {
        // Stopped before any cordon of its own: the cordons left are the resolution's to undo, those the pool's earlier
        // drains here left (before their call's time ran out) and those another process made before it read the marker.
        const memory = this.registry.memory(pool.key);
        const retry = { deadline, backoff: o.backoff };
        const unrecorded = await this.recallAfterMarking(pool, stoppedBy.resolvedAt, retry);
        const uncordoned = await uncordonNodes(drainer, [...memory.cordoned.keys()], memory, { ...retry, logger: o.logger, resolution: { pool: pool.key, resolvedAt: stoppedBy.resolvedAt } });
        if (resolvedElsewhere) return failIfUnrecorded(unrecorded, this.alreadyResolved(pool, since, stoppedBy.resolvedAt, started));
        const result: PoolDrainOutcome = { ...emptyOutcome(), selected: nodes.length, left: nodes.map((n) => n.metadata?.name ?? ''), uncordoned, stopped: true };
        return failIfUnrecorded(unrecorded, this.stoppedEarly(pool, result, started));
      }
      o.logger.info('draining pool', { pool: pool.name, nodes: nodes.length, maxUnavailable: settings.maxUnavailable, minIntervalMs: settings.minIntervalMs });
      const result = await drainPool(drainer, {
        nodes,
        event,
        pool: pool.key,
        surgeAt: () => since,
        settings,
        at,
        signal: context.signal,
        stop: stop.signal,
        stoppedBy: () => stoppedBy,
        // A resolution another process took while the cordons were on their way listed the pool before some landed.
        afterCordons: async () => void (await this.learnResolution(pool, { deadline, backoff: o.backoff })),
        memory: this.registry.memory(pool.key),
        maxNodeDrainMs: o.maxDrainMs,
        backoff: o.backoff,
        clock: o.clock,
        logger: o.logger,
      });
      undoneFor = result.undoneFor;
      if (result.stopped) return this.stoppedEarly(pool, result, started);
      const attributes = attributesOf(pool, result, started, o.clock.now(), false);
      const counts = countsText(result);
      if (result.left.length > 0) {
        const left = `nodes_left=${result.left.length} (${result.left.join(', ')})`;
        const unevictable = result.unevictable.map((u) => `${u.node}: ${u.error.message}`).join('; ');
        o.logger.warn('pool drain incomplete', { ...attributes, left: result.left, ...(unevictable ? { unevictable } : {}) });
        // Only nodes no retry can drain: retrying the call would change nothing (as for one node's drain).
        if (result.unevictable.length === result.left.length) {
          throw new PluginError(Code.FailedPrecondition, `drain of pool ${pool.name} left nodes a pod of which no eviction can move: ${counts}; ${left}: ${unevictable}`);
        }
        const message = `drain of pool ${pool.name} stopped at its deadline: ${counts}; ${left}` + (unevictable ? `; of those, held by a pod no eviction can move: ${unevictable}` : '');
        throw new DrainIncompleteError(message, attributes);
      }
      // Cordons undone or taken over elsewhere while it ran: what is left of the drain is not this call's to retry.
      if (result.released.length > 0) {
        o.logger.info('pool drain released nodes whose cordon was no longer its own', { ...attributes, released: result.released });
        return { message: `drain of pool ${pool.name}: ${counts}`, attributes };
      }
      if (result.newlyCordoned === 0 && result.evicted === 0 && !o.dryRun) {
        return { status: 'skipped', message: `pool ${pool.name} is already cordoned and drained`, attributes };
      }
      if (o.dryRun) return { message: `dry run: would drain pool ${pool.name} (${result.selected} nodes)`, attributes: { ...attributes, dry_run: 'true' } };
      o.logger.info('drained pool', attributes);
      return { message: `drained pool ${pool.name}: ${counts}`, attributes };
    })();
    return {
      get since() {
        return since;
      },
      adopt: (surgeAt) => {
        since = Math.max(since, surgeAt);
      },
      outcome,
      get stopped() {
        return stop.signal.aborted;
      },
      get undoneFor() {
        return undoneFor;
      },
      stop: (resolvedAt, by) => {
        stoppedBy = { resolvedAt: Math.max(resolvedAt, stoppedBy.resolvedAt), deadline: by };
        stop.abort();
      },
    };
  }

  /** The answer of a drain a resolution stopped with nodes left. */
  private stoppedEarly(pool: Pool, result: PoolDrainOutcome, started: number): HandleResult {
    const o = this.deps.options;
    const attributes = attributesOf(pool, result, started, o.clock.now(), true);
    const message = `drain of pool ${pool.name} stopped early (the surge resolved): ${countsText(result)}; uncordoned ${result.uncordoned.length} (${result.uncordoned.join(', ')})`;
    o.logger.info('pool drain stopped early', { ...attributes, uncordoned: result.uncordoned });
    return { message, attributes };
  }

  /**
   * Records the resolution at `resolvedAt` in the pool's marker, then lists the pool and adds to its memory the cordons
   * the nodes record (see {@link recallRecordedCordons}). In that order: a drain in another process still cordoning reads
   * the marker once its cordons have landed and undoes them itself, or they landed before, and this listing finds them.
   * A marker that cannot be written is returned, not thrown: the cordons are recalled all the same, for the caller to undo.
   */
  private async recallAfterMarking(pool: Pool, resolvedAt: number, retry: NodeRetry): Promise<PluginError | undefined> {
    const { api, drainer, options: o } = this.deps;
    const unrecorded = await this.recordResolution(pool, resolvedAt, retry);
    await recallRecordedCordons(drainer, await listPoolNodes(api, pool, retry), pool.key, this.registry.memory(pool.key), { ...retry, logger: o.logger });
    return unrecorded;
  }

  private async resolve(call: PoolCall): Promise<HandleResult> {
    const { pool, time, deadline } = call;
    const found = this.registry.resolve(pool.key, time, deadline);
    if ('none' in found) return this.uncordonLeft(pool, time, deadline);
    // The stop is made already: a marker that cannot be written fails the call after it, naming what it did.
    const unrecorded = await this.recordResolution(pool, time, { deadline, backoff: this.deps.options.backoff });
    if ('newer' in found) {
      return failIfUnrecorded(unrecorded, { status: 'skipped', message: `the drain in progress for pool ${pool.name} follows a surge newer than this resolution (${iso(time)}); not stopped`, attributes: { pool: pool.name } });
    }
    return failIfUnrecorded(unrecorded, await this.stopAnswer(pool, found.stopped, deadline));
  }

  /** The answer of a resolution that stopped `run`: the drain's own, once it has wound down, or why it has not. */
  private async stopAnswer(pool: Pool, run: PoolRun, deadline: Deadline): Promise<HandleResult> {
    let stopped: HandleResult;
    try {
      stopped = await deadline.race(run.outcome);
    } catch (err) {
      // The drain it stopped ended in an error, or is still winding down at this call's deadline: the stop was made either way.
      const why = err instanceof PluginError ? err.message : 'still stopping at this call\'s deadline';
      return { message: `stopped the drain of pool ${pool.name} (${why})`, attributes: { pool: pool.name, stopped_early: 'true' } };
    }
    return { message: `stopped the drain of pool ${pool.name}: ${stopped.message ?? ''}`, attributes: stopped.attributes };
  }

  /** Records the resolution in the pool's marker; a write that fails is returned, not thrown (see {@link failIfUnrecorded}). */
  private recordResolution(pool: Pool, resolvedAt: number, retry: NodeRetry): Promise<PluginError | undefined> {
    return this.marker.record(pool.key, resolvedAt, retry).then(() => undefined, (err: unknown) => PluginError.from(err));
  }

  /**
   * A resolution at `resolvedAt` with no drain to stop: undoes the cordons the pool's earlier drains left (one that ran out
   * of time, say), those this process remembers and those the pool's nodes record (made before a restart of the plugin)
   * and did not drain; not those held for a surge later than the resolution (a late resolution of an earlier surge).
   */
  private async uncordonLeft(pool: Pool, resolvedAt: number, deadline: Deadline): Promise<HandleResult> {
    const { api, options: o } = this.deps;
    const memory = this.registry.memory(pool.key);
    const retry = { deadline, backoff: o.backoff };
    const noDrain = `no pool drain in progress for pool ${pool.name}`;
    // A pool of no node has no cordon to undo, nor one another process may be making; the marker is written all the same:
    // a surge in another process may list the pool only once nodes have joined it, and must find its surge resolved.
    if ((await listPoolNodes(api, pool, retry)).length === 0 && memory.cordoned.size === 0) {
      return failIfUnrecorded(await this.recordResolution(pool, resolvedAt, retry), { status: 'skipped', message: noDrain, attributes: { pool: pool.name } });
    }
    // A marker that cannot be written (its Role missing, say) still leaves these cordons to undo: the call fails after them, naming it.
    const unrecorded = await this.recallAfterMarking(pool, resolvedAt, retry);
    return failIfUnrecorded(unrecorded, await this.undoLeftCordons(pool, resolvedAt, retry, noDrain));
  }

  /** The uncordons of {@link uncordonLeft}, once the pool's marker has been recorded (or failed to be) and its cordons recalled. */
  private async undoLeftCordons(pool: Pool, resolvedAt: number, retry: NodeRetry, noDrain: string): Promise<HandleResult> {
    const { drainer, options: o } = this.deps;
    const memory = this.registry.memory(pool.key);
    const heldHere = (): number => [...memory.cordoned.values()].filter((c) => heldForNewerSurge(c, resolvedAt)).length;
    const held = heldHere();
    const none = noDrain + (held > 0 ? `; ${held} nodes stay cordoned for a surge newer than this resolution` : '');
    if (memory.cordoned.size === held) return { status: 'skipped', message: none, attributes: { pool: pool.name } };
    const uncordoned = await uncordonNodes(drainer, [...memory.cordoned.keys()], memory, { ...retry, logger: o.logger, resolution: { pool: pool.key, resolvedAt } });
    // Nothing undone and nothing failed: the nodes' records said the cordons were held for a newer surge (by another
    // plugin process's drain, say) or taken over; this process's memory of them was older.
    if (uncordoned.length === 0 && memory.cordoned.size === heldHere()) {
      return { status: 'skipped', message: `${none}; the cordons its earlier drains left are held for a surge newer than this resolution, or were taken over: left as they are`, attributes: { pool: pool.name } };
    }
    o.logger.info('uncordoned the nodes an earlier pool drain left', { pool: pool.name, uncordoned });
    return {
      message: `${none}; uncordoned ${uncordoned.length} nodes an earlier drain of the pool left cordoned (${uncordoned.join(', ')})`,
      attributes: { pool: pool.name, nodes_uncordoned: String(uncordoned.length) },
    };
  }
}

/** `result`, or the marker's write failure with what was done all the same (the cordons undone) in its message. */
function failIfUnrecorded(unrecorded: PluginError | undefined, result: HandleResult): HandleResult {
  if (unrecorded) throw new PluginError(unrecorded.code, `${unrecorded.message}; ${result.message ?? ''}`, { cause: unrecorded });
  return result;
}

function emptyOutcome(): PoolDrainOutcome {
  return { selected: 0, newlyCordoned: 0, drained: [], left: [], released: [], unevictable: [], uncordoned: [], evicted: 0, stopped: false, undoneFor: undefined };
}

/** What a drain did, for its answer: nodes drained, pods evicted, nodes released. */
function countsText(result: PoolDrainOutcome): string {
  return `${result.drained.length} of ${result.selected} nodes drained, ${result.evicted} pods evicted` + releasedText(result.released);
}

/** The part of an answer that names the released nodes (none: nothing), grouped by why. */
function releasedText(released: PoolDrainOutcome['released']): string {
  if (released.length === 0) return '';
  const byWhy = new Map<string, string[]>();
  for (const { node, why } of released) byWhy.set(why, [...(byWhy.get(why) ?? []), node]);
  const groups = [...byWhy].map(([why, nodes]) => `${nodes.sort().join(', ')}: ${why}`).join('; ');
  return `; ${released.length} nodes no longer cordoned for this surge when their drain began or ended, not drained (${groups})`;
}

function attributesOf(pool: Pool, result: PoolDrainOutcome | undefined, started: number, now: number, stoppedEarly: boolean): Record<string, string> {
  const r = result ?? emptyOutcome();
  return {
    pool: pool.name,
    nodes_selected: String(r.selected),
    nodes_drained: String(r.drained.length),
    nodes_left: String(r.left.length),
    nodes_released: String(r.released.length),
    stopped_early: String(stoppedEarly),
    duration_ms: String(now - started),
  };
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The event's `time`, if it has a valid one. */
function eventTime(event: CloudEvent): number | undefined {
  const t = event.time === undefined ? NaN : Date.parse(event.time);
  return Number.isNaN(t) ? undefined : t;
}
