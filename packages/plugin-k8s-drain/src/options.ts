import { jsonLogger, steadyClock, type Clock, type PluginLogger as Logger } from '@hollowtrees/grpcplugin/without-grpc';
import { DEFAULT_NODE_LABEL, DEFAULT_TAINT, type NodeLabel, type Taint } from './node-marks.js';
import { exponentialBackoff, type Backoff } from '@hollowtrees/grpcplugin/without-grpc';

/** The `service` field of the plugin's log lines. */
export const SERVICE = 'hollowtrees-k8s-drain';

/** Settings of the drain handler; every field has a default. */
export interface DrainOptions {
  /** Event label holding the node name. Default `node`. */
  nodeLabel?: string;
  /** Event label holding the EC2 instance id, matched against the node's `spec.providerID`. Default `instance_id`. */
  instanceIdLabel?: string;
  /** Event label holding the instance's termination time (RFC 3339). Default `termination_time`. */
  terminationTimeLabel?: string;
  /** Taint put on the node. Default `hollowtrees.io/spot-termination=true:NoSchedule`. */
  taint?: Taint;
  /** Label put on the node. Default `hollowtrees.io/spot-termination=true`. */
  nodeLabelMark?: NodeLabel;
  /** Evict pods with emptyDir volumes (their data is lost). Default true, as the AWS Node Termination Handler. */
  deleteEmptyDirData?: boolean;
  /** Cap on a pod's termination grace period, in seconds. Default: none, each pod's own. */
  gracePeriodSeconds?: number;
  /** Evictions in flight at once for one node. Default 20. */
  concurrency?: number;
  /**
   * Kubernetes calls in flight at once across every drain of the process (and
   * the keep-alive connections kept); more wait, cordons first. Default 64.
   */
  maxInFlight?: number;
  /**
   * Keep the cluster's nodes and pods in watch-fed caches: a drain finds its
   * node and reads its pods from them and waits for their DELETED events,
   * instead of a GET (or a list of every node) and a pod list per node and a
   * poll while the pods terminate. Needs `watch` on nodes and pods. Default true.
   */
  watchCache?: boolean;
  /** After evicting, wait until the evicted pods are gone from the node. Default true. */
  waitForDeletion?: boolean;
  /** Poll interval while waiting for deletion, when the watch cache is off or not ready. Default 1 000 ms. */
  deletionPollMs?: number;
  /** Stop this long before the event's termination time. Default 10 000 ms. */
  terminationMarginMs?: number;
  /** Stop this long before the gRPC deadline, so the answer reaches core in time. Default 1 000 ms. */
  replyMarginMs?: number;
  /** Longest drain when neither the call nor the event bounds it. Default 120 000 ms (a spot notice). */
  maxDrainMs?: number;
  /**
   * A node that does not exist: `error` answers NOT_FOUND; `skip` answers
   * `skipped`, for several clusters sharing one signal source. Default `error`.
   * A node known gone (deleted, or its name another instance's now) is skipped either way.
   */
  nodeNotFound?: 'error' | 'skip';
  /** Namespace of the Kubernetes Events recorded on the node. Default `default`, as the kubelet. */
  eventNamespace?: string;
  /**
   * Pool mode: namespace of the Leases (one per pool, `hollowtrees-pool-<hash>`) that record each pool's latest
   * resolution for every plugin process. Default: the plugin's own pod's namespace (`ownPod`), else `default`.
   */
  poolNamespace?: string;
  /** Pool mode (`mode: pool` in the flow's plugin config): nodes draining at once, unless the flow sets `maxUnavailable`. Default 1. */
  poolMaxUnavailable?: number;
  /** Pool mode: least time between the starts of two node drains, unless the flow sets `minInterval`. Default 0. */
  poolMinIntervalMs?: number;
  /**
   * The pod the plugin runs in (the CLI reads `POD_NAMESPACE` and `POD_NAME`, set from the downward
   * API), never evicted: draining the node it runs on would otherwise evict it mid-drain, and core
   * with it when they share a pod. Default: none.
   */
  ownPod?: { namespace: string; name: string };
  /** Log every step instead of changing anything. Default false. */
  dryRun?: boolean;
  /** Wait before each retry of a Kubernetes call. Default `exponentialBackoff()`: 250 ms doubling to 5 s, jittered. */
  backoff?: Backoff;
  /** Default: JSON lines on stdout, in core's format (`service: hollowtrees-k8s-drain`). */
  logger?: Logger;
  /**
   * Where a drain reads the time and waits for its deadline and retries. Default {@link steadyClock}: a step of the
   * wall clock during a drain (NTP after a VM resumed) neither ends its waits at once nor stretches them.
   */
  clock?: Clock;
}

/** {@link DrainOptions} with every default applied. */
export type ResolvedDrainOptions = Required<Omit<DrainOptions, 'gracePeriodSeconds' | 'ownPod'>> & Pick<DrainOptions, 'gracePeriodSeconds' | 'ownPod'>;

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a non-negative number, got ${value}`);
  return value;
}

/** The longest wait an option sets: Node fires a timer of 2^31 ms (24.8 days) or more after 1 ms. */
export const MAX_WAIT_MS = 86_400_000;

/** The least each wait may be: a poll every 0 ms spins on the API server, a drain of at most 0 ms never starts. */
export const WAIT_MINIMUM_MS = { deletionPollMs: 1, terminationMarginMs: 0, replyMarginMs: 0, maxDrainMs: 1, poolMinIntervalMs: 0 } as const;

function wait(name: keyof typeof WAIT_MINIMUM_MS, value: number): number {
  const min = WAIT_MINIMUM_MS[name];
  if (!Number.isFinite(value) || value < min || value > MAX_WAIT_MS) throw new RangeError(`${name} must be from ${min} to ${MAX_WAIT_MS} ms (24h), got ${value}`);
  return value;
}

/**
 * Applies the defaults and checks the numbers.
 * @throws RangeError for a negative or non-finite number, a concurrency, in-flight or pool limit below 1, or a wait
 * outside {@link WAIT_MINIMUM_MS} to {@link MAX_WAIT_MS}.
 */
export function resolveDrainOptions(o: DrainOptions = {}): ResolvedDrainOptions {
  const concurrency = o.concurrency ?? 20;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be an integer >= 1, got ${concurrency}`);
  const maxInFlight = o.maxInFlight ?? 64;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) throw new RangeError(`maxInFlight must be an integer >= 1, got ${maxInFlight}`);
  const poolMaxUnavailable = o.poolMaxUnavailable ?? 1;
  if (!Number.isInteger(poolMaxUnavailable) || poolMaxUnavailable < 1) throw new RangeError(`poolMaxUnavailable must be an integer >= 1, got ${poolMaxUnavailable}`);
  return {
    nodeLabel: o.nodeLabel ?? 'node',
    instanceIdLabel: o.instanceIdLabel ?? 'instance_id',
    terminationTimeLabel: o.terminationTimeLabel ?? 'termination_time',
    taint: o.taint ?? { ...DEFAULT_TAINT },
    nodeLabelMark: o.nodeLabelMark ?? { ...DEFAULT_NODE_LABEL },
    deleteEmptyDirData: o.deleteEmptyDirData ?? true,
    gracePeriodSeconds: o.gracePeriodSeconds === undefined ? undefined : positive('gracePeriodSeconds', o.gracePeriodSeconds),
    concurrency,
    maxInFlight,
    watchCache: o.watchCache ?? true,
    waitForDeletion: o.waitForDeletion ?? true,
    deletionPollMs: wait('deletionPollMs', o.deletionPollMs ?? 1_000),
    terminationMarginMs: wait('terminationMarginMs', o.terminationMarginMs ?? 10_000),
    replyMarginMs: wait('replyMarginMs', o.replyMarginMs ?? 1_000),
    maxDrainMs: wait('maxDrainMs', o.maxDrainMs ?? 120_000),
    nodeNotFound: o.nodeNotFound ?? 'error',
    eventNamespace: o.eventNamespace ?? 'default',
    poolNamespace: o.poolNamespace ?? o.ownPod?.namespace ?? 'default',
    poolMaxUnavailable,
    poolMinIntervalMs: wait('poolMinIntervalMs', o.poolMinIntervalMs ?? 0),
    ...(o.ownPod ? { ownPod: o.ownPod } : {}),
    dryRun: o.dryRun ?? false,
    backoff: o.backoff ?? exponentialBackoff(),
    logger: o.logger ?? jsonLogger({ service: SERVICE }),
    clock: o.clock ?? steadyClock,
  };
}
