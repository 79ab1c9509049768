import { Code, deadlineOn, labelsOf, PluginError, wallAheadOf, wallTimeOf, type Backoff, type CloudEvent, type EventHandler, type HandleContext, type HandleResult } from '@hollowtrees/grpcplugin';
import type { KubeConfig, V1Node } from '@kubernetes/client-node';
import { Deadline } from './deadline.js';
import { drainDeadline, terminationTimeOf } from './drain-deadline.js';
import { EventRecorder } from './events.js';
import { createKubeApi, type KubeApi } from './kube-api.js';
import { NodeCache } from './node-cache.js';
import { describeNodeRef, findNode, nodeRefOf, type NodeRef } from './node-lookup.js';
import { resolveDrainOptions, type DrainOptions, type ResolvedDrainOptions } from './options.js';
import { PodCache } from './pod-cache.js';
import { cachedPodSource, listingPodSource } from './pod-source.js';
import { NodeDrainer, type NodeRetry } from './node-drain.js';
import type { CordonResult } from './cordon.js';
import { nothingToDrain } from './pod-filter.js';
import { PoolAction } from './pool-action.js';
import { isResolution } from './resolution.js';
import { drainModeOf } from './pool-options.js';
/** How long a drain waits for a cache's first list before it asks the API server itself. */
const CACHE_SYNC_WAIT_MS = 10_000;
/** Kubernetes Events in flight beyond which new ones are dropped. */
const MAX_PENDING_EVENTS = 10_000;

/**
 * The cordon-and-drain action: finds the node an event is about, cordons,
 * taints and labels it, evicts its pods through the Eviction API within the
 * deadline, and answers `node`, `pods_evicted`, `pods_remaining`, `duration_ms`.
 *
 * Answers: `ok` after a drain; `skipped` when the node was already cordoned
 * and had nothing left to evict, is gone (`node_gone=true`: deleted, or its name
 * another instance's now), or does not exist and `nodeNotFound` is `skip`.
 * Fails with INVALID_ARGUMENT (no node label), NOT_FOUND (no such
 * node), FAILED_PRECONDITION (the deadline had already passed when the call
 * came: no time left to drain at all, though the node is still cordoned while
 * the call's own time allows; or the kubeconfig's TLS settings cannot
 * work, e.g. a CA that did not issue the API server's certificate), DEADLINE_EXCEEDED
 * ({@link DrainIncompleteError}: pods left at the deadline), UNAVAILABLE (API server unreachable until the deadline),
 * PERMISSION_DENIED / UNAUTHENTICATED (RBAC or credentials).
 *
 * A call whose flow config sets `mode: pool` drains the event's whole pool
 * instead, paced, or stops that drain for a `.resolved` event (see the README's pool mode).
 */
export class DrainHandler implements EventHandler {
  private readonly options: ResolvedDrainOptions;
  private readonly cache: PodCache | undefined;
  private readonly nodes: NodeCache | undefined;
  private readonly events: EventRecorder;
  private readonly drainer: NodeDrainer;
  private readonly pool: PoolAction;

  constructor(
    private readonly api: KubeApi,
    options: DrainOptions = {},
  ) {
    const o = (this.options = resolveDrainOptions(options));
    const listing = listingPodSource(api, o.deletionPollMs);
    this.cache = o.watchCache ? new PodCache(api, { logger: o.logger, backoff: o.backoff }) : undefined;
    this.nodes = o.watchCache ? new NodeCache(api, { logger: o.logger, backoff: o.backoff }) : undefined;
    const pods = this.cache ? cachedPodSource(this.cache, listing, CACHE_SYNC_WAIT_MS) : listing;
    this.events = new EventRecorder(api, { namespace: o.eventNamespace, logger: o.logger, dryRun: o.dryRun, maxPending: MAX_PENDING_EVENTS });
    this.drainer = new NodeDrainer(api, pods, this.events, o);
    this.pool = new PoolAction({ api, drainer: this.drainer, findNode: (ref, retry) => this.findNode(ref, retry), options: o });
  }

  /** Lists and starts watching the cluster's nodes and pods now rather than at the first drain (with `watchCache`). */
  start(): void {
    this.nodes?.start();
    this.cache?.start();
  }

  /** Resolves once every Kubernetes Event sent so far has been answered. */
  eventsRecorded(): Promise<void> {
    return this.events.idle();
  }

  /** Stops the watches and closes the connections, once the Events in flight are answered. */
  async close(): Promise<void> {
    this.nodes?.stop();
    this.cache?.stop();
    await this.events.idle();
    this.api.close();
  }

  async handle(event: CloudEvent, context: HandleContext): Promise<HandleResult> {
    const o = this.options;
    const mode = drainModeOf(context.config, { maxUnavailable: o.poolMaxUnavailable, minIntervalMs: o.poolMinIntervalMs });
    if (mode.mode === 'pool') return this.pool.handle(event, context, mode.settings);
    // An interruption has nothing to undo (its instance is gone or going): a resolution routed here drains nothing.
    if (isResolution(event)) return { status: 'skipped', message: `${event.type} ends an interruption: nothing to drain (only pool mode undoes its cordons)` };
    const started = o.clock.now();
    const labels = labelsOf(event);
    const ref = nodeRefOf(labels, o);
    const at = drainDeadline({
      now: started,
      callDeadline: context.deadline,
      terminationTime: terminationTimeOf(labels, o.terminationTimeLabel),
      terminationMarginMs: o.terminationMarginMs,
      replyMarginMs: o.replyMarginMs,
      maxDrainMs: o.maxDrainMs,
      wallAheadMs: wallAheadOf(o.clock)(),
    });
    // Permanent: the deadline is already behind us, so a retry would find even less time.
    if (at <= started) throw new PluginError(Code.FailedPrecondition, await this.cordonTooLate(event, ref, context, started, at));
    const deadline = new Deadline(at, context.signal, o.clock);
    try {
      return await this.drain(event, ref, deadline, started);
    } finally {
      deadline.dispose();
    }
  }

  private async drain(event: CloudEvent, ref: NodeRef, deadline: Deadline, started: number): Promise<HandleResult> {
    const o = this.options;
    const retry = { deadline, backoff: o.backoff };

    const node = await this.findNode(ref, retry);
    if (!node) return this.nodeNotFound(ref, await this.isGone(ref, retry));
    const name = node.metadata?.name ?? '';

    const cordoned = await this.cordonTakingOver(node, event, retry).catch((err: unknown) => {
      // Deleted since it was found (its instance is gone, the cloud node controller removed it).
      if (err instanceof PluginError && err.code === Code.NotFound) return undefined;
      throw err;
    });
    if (cordoned === undefined) return this.nodeNotFound(ref, true);
    const plan = await this.drainer.plan(name, retry);
    const attributes = (evicted: number, remaining: number): Record<string, string> => ({
      node: name,
      pods_evicted: String(evicted),
      pods_remaining: String(remaining),
      duration_ms: String(o.clock.now() - started),
    });
    if (!o.dryRun && !cordoned.changed && nothingToDrain(plan)) {
      o.logger.info('node already cordoned and drained', { node: name });
      return { status: 'skipped', message: `node ${name} is already cordoned and drained`, attributes: attributes(0, 0) };
    }
    const result = await this.drainer.evict(node, plan, retry, attributes);
    return { message: o.dryRun ? `dry run: would ${cordoned.changed ? 'cordon node and ' : ''}${result.message}` : result.message, attributes: result.attributes };
  }

  /**
   * A notice that came too late to drain (its deadline, less the margins, has passed) still gets
   * its node cordoned while the call's own time allows: that takes milliseconds and keeps new pods
   * off an instance going away. Never throws: answers the FAILED_PRECONDITION message, which says
   * whether the node was cordoned.
   */
  private async cordonTooLate(event: CloudEvent, ref: NodeRef, context: HandleContext, started: number, at: number): Promise<string> {
    const o = this.options;
    const noTime = `no time left to drain ${describeNodeRef(ref)}: its deadline ${new Date(wallTimeOf(o.clock, at)).toISOString()} has passed`;
    const until = Math.min(started + o.maxDrainMs, deadlineOn(o.clock, context.deadline) - o.replyMarginMs);
    if (until <= started) return noTime;
    const deadline = new Deadline(until, context.signal, o.clock);
    try {
      const retry = { deadline, backoff: o.backoff };
      const node = await this.findNode(ref, retry);
      const cordoned = node && (await this.cordonTakingOver(node, event, retry));
      if (!node || !cordoned) return `${noTime}; the node is not in this cluster`;
      return `${noTime}; node ${node.metadata?.name ?? ''} ${cordoned.changed ? (o.dryRun ? 'would be cordoned' : 'cordoned') : 'was cordoned already'}, no pod evicted`;
    } catch (err) {
      o.logger.warn('could not cordon a node whose drain came too late', { node: describeNodeRef(ref), err });
      return `${noTime}; cordoning it failed too: ${(err as Error).message}`;
    } finally {
      deadline.dispose();
    }
  }

  /**
   * Cordons the node for a per-instance drain and takes it over from the pool drains: its instance is
   * going away, so a price surge's resolution must not uncordon it under the drain. A resolution's
   * uncordon of it may be in flight already, past its check and landing after this cordon found the
   * node cordoned: once it has landed, the node is read and cordoned again. So is a node found
   * cordoned already: the copy may be the node cache's, which can lag an uncordon that has just
   * landed. Undefined when the node is gone by then.
   */
  private async cordonTakingOver(node: V1Node, event: CloudEvent, retry: NodeRetry): Promise<CordonResult | undefined> {
    const name = node.metadata?.name ?? '';
    const first = await this.drainer.cordon(node, event, retry);
    const uncordoning = this.pool.takenOver(name);
    if (uncordoning) {
      this.options.logger.info('a pool drain is uncordoning the node: cordoning it again once that has landed', { node: name });
      await retry.deadline.race(uncordoning);
    } else if (first.changed) return first;
    const now = await findNode(this.api, { name }, retry);
    if (!now) return undefined;
    const again = await this.drainer.cordon(now, event, retry);
    return { changed: first.changed || again.changed, wasUnschedulable: first.wasUnschedulable };
  }

  /** From the node cache when it has the node (no call at all), else from the API server. */
  private async findNode(ref: NodeRef, retry: { deadline: Deadline; backoff: Backoff }): Promise<V1Node | undefined> {
    if (this.nodes && (await this.nodes.whenSynced(Math.min(CACHE_SYNC_WAIT_MS, retry.deadline.remainingMs())))) {
      const cached = this.nodes.find(ref);
      if (cached) return cached;
    }
    // Not there (a node that has just joined, say) or no cache: ask.
    return findNode(this.api, ref, retry);
  }

  /**
   * Whether the node `ref` means was in this cluster and has left it: the node cache saw it deleted,
   * or a node has the name the event gives with another instance behind it (the name reused).
   */
  private async isGone(ref: NodeRef, retry: NodeRetry): Promise<boolean> {
    if (this.nodes?.sawDeleted(ref)) return true;
    return 'name' in ref && ref.instanceId !== undefined && (await this.findNode({ name: ref.name }, retry)) !== undefined;
  }

  /**
   * The answer for a node not in the cluster: a node that is `gone` has nothing left to drain, so it is
   * skipped whatever `nodeNotFound` says (failing the run would keep its next plugin, the replacement,
   * from running); any other is NOT_FOUND, or skipped when `nodeNotFound` is `skip`.
   */
  private nodeNotFound(ref: NodeRef, gone: boolean): HandleResult {
    const what = 'name' in ref ? `${describeNodeRef(ref)} does not exist` : `no node has instance ${ref.instanceId} in its spec.providerID`;
    if (gone) {
      this.options.logger.info('node gone from the cluster (its instance reclaimed): nothing left to drain', { node: describeNodeRef(ref) });
      return { status: 'skipped', message: `${what} in this cluster; nothing to drain`, attributes: { node_gone: 'true' } };
    }
    if (this.options.nodeNotFound === 'skip') {
      this.options.logger.info('node not found; skipping as configured', { node: describeNodeRef(ref) });
      return { status: 'skipped', message: `${what} in this cluster; nothing to drain` };
    }
    throw new PluginError(Code.NotFound, `${what} in this cluster (set nodeNotFound to "skip" if several clusters share this signal source)`);
  }
}

/** A {@link DrainHandler} talking to the cluster of `kubeConfig` through `@kubernetes/client-node`. */
export function createDrainHandler(kubeConfig: KubeConfig, options: DrainOptions = {}): DrainHandler {
  return new DrainHandler(createKubeApi(kubeConfig, { maxInFlight: resolveDrainOptions(options).maxInFlight }), options);
}
