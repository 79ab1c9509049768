import type { Backoff, CloudEvent } from '@hollowtrees/grpcplugin';
import type { V1Node } from '@kubernetes/client-node';
import { checkPoolCordon, cordonNode, isMarked, recordNewerSurge, uncordonNode, type CordonResult, type HeldPoolCordon, type PoolCordonLoss } from './cordon.js';
import { DrainStoppedError, type Deadline } from './deadline.js';
import { DrainIncompleteError } from './drain-incomplete-error.js';
import { evictPods, gracePeriodFor, type EvictRun } from './evict.js';
import type { EventRecorder } from './events.js';
import type { KubeApi } from './kube-api.js';
import type { ResolvedDrainOptions } from './options.js';
import { planEviction, podKey, type EvictionPlan } from './pod-filter.js';
import type { PodSource } from './pod-source.js';
import type { PoolClaim, PoolResolution } from './pool-cordon-record.js';
import type { PoolCordon } from './pool-registry.js';

// Enough pod names for a message; the rest are counted.
const LISTED_PODS = 5;

/** How a node's drain calls are retried and bounded. */
export interface NodeRetry {
  deadline: Deadline;
  backoff: Backoff;
}

/** What {@link NodeDrainer.evict} did. */
export interface NodeEvictionResult {
  /** What `attributes` built (with `dry_run=true` in dry-run, where `pods_remaining` counts the pods it would evict). */
  attributes: Record<string, string>;
  message: string;
}

/**
 * The steps of one node's drain, shared by the per-instance action (all in a
 * row) and the pool action (every node cordoned first, then the evictions
 * paced): cordon and mark, plan which pods go, evict them and wait until they
 * are gone, and undo a cordon.
 */
export class NodeDrainer {
  constructor(
    private readonly api: KubeApi,
    private readonly pods: PodSource,
    private readonly events: EventRecorder,
    private readonly options: ResolvedDrainOptions,
  ) {}

  /**
   * Cordons, taints and labels the node; records `SpotInterruption` when it changed it. Answers whether it did, and whether the node
   * was unschedulable before. A pool drain's cordon names its pool's key and surge (`claim`), which the cordon patch records on the node.
   */
  async cordon(node: V1Node, event: CloudEvent, retry: NodeRetry, claim?: PoolClaim): Promise<CordonResult> {
    const o = this.options;
    const result = await cordonNode(this.api, node, { taint: o.taint, label: o.nodeLabelMark }, { ...retry, dryRun: o.dryRun, logger: o.logger }, claim);
    if (result.changed) {
      this.events.record(node, {
        reason: 'SpotInterruption',
        type: 'Warning',
        message: `Hollowtrees received ${event.type} (event ${event.id}): node cordoned and tainted, draining it`,
      });
    }
    return result;
  }

  /** Moves the node's record of a pool cordon for an older surge to `claim`'s; answers whether the node is still cordoned (see {@link recordNewerSurge}). */
  recordSurge(name: string, uid: string | undefined, claim: PoolClaim, retry: NodeRetry): Promise<boolean> {
    const o = this.options;
    return recordNewerSurge(this.api, name, uid, { taint: o.taint, label: o.nodeLabelMark }, claim, { ...retry, dryRun: o.dryRun });
  }

  /** Whether `node`, as read, is no longer cordoned and marked: a cordon made on it was undone. In dry-run nothing was cordoned: never. */
  uncordoned(node: V1Node): boolean {
    const o = this.options;
    return !o.dryRun && !isMarked(node, { taint: o.taint, label: o.nodeLabelMark });
  }

  /**
   * Whether the node still carries its pool cordon for `held`, or why not (see {@link checkPoolCordon}). In dry-run
   * nothing was cordoned: it always does.
   */
  async poolCordonLoss(name: string, uid: string | undefined, held: HeldPoolCordon, retry: NodeRetry): Promise<PoolCordonLoss | undefined> {
    const o = this.options;
    return o.dryRun ? undefined : checkPoolCordon(this.api, name, uid, { taint: o.taint, label: o.nodeLabelMark }, held, retry);
  }

  /**
   * Undoes {@link cordon} on the node `cordon.uid` names, if it still carries the plugin's label (and the record `cordon.recordedFor` names);
   * `cordon.wasUnschedulable` keeps a cordon someone else made before. A node whose record says a drain of the
   * `resolution`'s pool holds it for a later surge is left.
   */
  uncordon(name: string, cordon: PoolCordon, retry: NodeRetry, resolution: PoolResolution): Promise<boolean> {
    const o = this.options;
    return uncordonNode(this.api, name, { taint: o.taint, label: o.nodeLabelMark }, cordon.wasUnschedulable, { ...retry, dryRun: o.dryRun, logger: o.logger }, cordon, resolution);
  }

  /** Which of the node's pods the drain evicts, waits for, and leaves alone (logged). */
  async plan(name: string, retry: NodeRetry): Promise<EvictionPlan> {
    const plan = planEviction(await this.pods.podsOn(name, retry), this.options);
    for (const { pod, reason } of plan.skipped) this.options.logger.info('not evicting pod', { node: name, pod: podKey(pod), reason });
    return plan;
  }

  /**
   * Evicts the planned pods and (with `waitForDeletion`) waits until they are
   * gone; records `CordonAndDrain`, or `DrainFailed` when pods were left.
   * `attributes(evicted, remaining)` builds the answer's attributes; `beforeRetry` runs before each retry of a refused
   * eviction (see {@link EvictRun}). In dry-run it only logs the pods it would evict, and its message is what it would do.
   * @throws DrainIncompleteError with those attributes when pods are left at the deadline.
   */
  async evict(
    node: V1Node,
    plan: EvictionPlan,
    retry: NodeRetry,
    attributes: (evicted: number, remaining: number) => Record<string, string>,
    hooks: Pick<EvictRun, 'beforeRetry'> = {},
  ): Promise<NodeEvictionResult> {
    const { api, options: o } = this;
    const log = o.logger;
    const name = node.metadata?.name ?? '';
    if (o.dryRun) {
      for (const pod of plan.evict) log.info('dry run: would evict pod', { node: name, pod: podKey(pod), gracePeriodSeconds: gracePeriodFor(pod, o.gracePeriodSeconds) });
      return { attributes: { ...attributes(0, plan.evict.length), dry_run: 'true' }, message: `evict ${plan.evict.length} pods from node ${name}` };
    }
    const outcome = await evictPods(api, plan.evict, { ...retry, ...hooks, logger: log, concurrency: o.concurrency, gracePeriodSeconds: o.gracePeriodSeconds });
    const terminating = o.waitForDeletion ? await this.pods.waitGone(name, [...outcome.evicted, ...outcome.deletedWithNamespace, ...plan.terminating], retry) : [];

    const result = attributes(outcome.evicted.length, outcome.remaining.length);
    if (outcome.remaining.length > 0) {
      const left = outcome.remaining.map((r) => podKey(r.pod)).sort();
      const shown = left.slice(0, LISTED_PODS).join(', ') + (left.length > LISTED_PODS ? `, and ${left.length - LISTED_PODS} more` : '');
      // A pool drain stopped on purpose (the surge resolved) has not failed: no Warning on the node.
      const stopped = retry.deadline.signal.reason instanceof DrainStoppedError;
      const message =
        `drain of node ${name} ${stopped ? 'stopped: the price surge resolved' : 'stopped at its deadline'}: pods_evicted=${outcome.evicted.length} ` +
        `pods_remaining=${outcome.remaining.length} (${shown}); last reason: ${outcome.remaining.at(-1)?.reason}`;
      if (stopped) log.info('drain stopped', { ...result, pods: left });
      else {
        log.warn('drain incomplete', { ...result, pods: left });
        this.events.record(node, { reason: 'DrainFailed', type: 'Warning', message });
      }
      throw new DrainIncompleteError(message, result);
    }
    const message =
      `drained node ${name}: ${outcome.evicted.length} pods evicted` +
      (outcome.deletedWithNamespace.length > 0 ? `, ${outcome.deletedWithNamespace.length} deleted with their namespace` : '') +
      (terminating.length > 0 ? `, ${terminating.length} still terminating at the deadline` : '');
    log.info('drained node', { ...result, terminating: terminating.length });
    this.events.record(node, { reason: 'CordonAndDrain', type: 'Normal', message });
    return { attributes: result, message };
  }
}
