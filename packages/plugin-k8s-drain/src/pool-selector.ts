import { ApiException, type V1Node } from '@kubernetes/client-node';
import { Code, PluginError } from '@hollowtrees/grpcplugin';
import type { KubeApi } from './kube-api.js';
import type { NodeRetry } from './node-drain.js';
import { withRetries } from './retry.js';

/** The well-known node label of the node's availability zone. */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
/** The well-known node label of the node's instance type. */
export const INSTANCE_TYPE_LABEL = 'node.kubernetes.io/instance-type';
/**
 * Nodes that say they are on-demand capacity, by the labels of EKS managed node groups and of
 * Karpenter, are no part of a spot pool: a surge of the spot price does not threaten them. `!=`
 * also selects the nodes without the label (self-managed groups), which a zone and type name.
 */
export const NOT_ON_DEMAND = 'eks.amazonaws.com/capacityType!=ON_DEMAND,karpenter.sh/capacity-type!=on-demand';
/** The event labels that name a pool (the issue-19 contract). */
export const POOL_EVENT_LABELS = { zone: 'availability_zone', instanceType: 'instance_type' } as const;

/** A pool of nodes: what the drain selects, and how it is named and keyed. */
export interface Pool {
  /** Tells pools apart in the plugin's memory of drains and resolutions. */
  readonly key: string;
  /** The `pool` attribute: `<zone>/<instance type>`, or the selector. */
  readonly name: string;
  /** The label selector that lists the pool's nodes. */
  readonly selector: string;
}

// A Kubernetes label value; anything else would change the meaning of the selector it goes into.
const LABEL_VALUE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/** The pool a flow's `selector` config names. */
export function poolOfSelector(selector: string): Pool {
  return { key: `selector:${selector}`, name: selector, selector };
}

/**
 * The spot pool of one availability zone and instance type (its nodes labelled on-demand left
 * out: {@link NOT_ON_DEMAND}); `where` says where the values came from, for the error.
 * @throws PluginError INVALID_ARGUMENT when a value cannot be a node label value.
 */
export function poolOfZoneAndType(zone: string, instanceType: string, where: string): Pool {
  for (const value of [zone, instanceType]) {
    if (!LABEL_VALUE.test(value)) throw new PluginError(Code.InvalidArgument, `${where}: "${value}" is not a valid node label value, so it names no pool`);
  }
  return { key: `${zone}/${instanceType}`, name: `${zone}/${instanceType}`, selector: `${ZONE_LABEL}=${zone},${INSTANCE_TYPE_LABEL}=${instanceType},${NOT_ON_DEMAND}` };
}

/**
 * The pool a node belongs to, from its zone and instance-type labels.
 * @throws PluginError FAILED_PRECONDITION when the node lacks one of them.
 */
export function poolOfNode(node: V1Node): Pool {
  const name = node.metadata?.name ?? '';
  const labels = node.metadata?.labels ?? {};
  const zone = labels[ZONE_LABEL];
  const instanceType = labels[INSTANCE_TYPE_LABEL];
  if (!zone || !instanceType) {
    throw new PluginError(Code.FailedPrecondition, `node "${name}" has no ${zone ? INSTANCE_TYPE_LABEL : ZONE_LABEL} label, so its pool is unknown (set a selector in the flow's plugin config)`);
  }
  return poolOfZoneAndType(zone, instanceType, `the labels of node "${name}"`);
}

/**
 * The pool's nodes, listed by its selector (the API server matches it, in its own grammar).
 * @throws PluginError INVALID_ARGUMENT when the API server refuses the selector.
 */
export async function listPoolNodes(api: KubeApi, pool: Pool, retry: NodeRetry): Promise<V1Node[]> {
  try {
    return await withRetries(() => api.listNodes(pool.selector), { ...retry, doing: `listing the nodes of pool ${pool.name}` });
  } catch (err) {
    if (err instanceof PluginError && err.cause instanceof ApiException && err.cause.code === 400) {
      throw new PluginError(Code.InvalidArgument, `flow plugin config: "selector" ${JSON.stringify(pool.selector)} is refused by the API server: ${err.message}`);
    }
    throw err;
  }
}
