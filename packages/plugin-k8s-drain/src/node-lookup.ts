import { Code, PluginError } from '@hollowtrees/grpcplugin';
import type { V1Node } from '@kubernetes/client-node';
import type { KubeApi } from './kube-api.js';
import type { Backoff } from '@hollowtrees/grpcplugin';
import { withRetries } from './retry.js';
import type { Deadline } from './deadline.js';

/** Which node an event is about: by name, or by the EC2 instance behind it. */
export type NodeRef = { readonly name: string } | { readonly instanceId: string };

/** The label keys that identify the node. */
export interface NodeLabelKeys {
  nodeLabel: string;
  instanceIdLabel: string;
}

/**
 * The node an event's labels point at: `nodeLabel` first, else `instanceIdLabel`.
 * @throws PluginError INVALID_ARGUMENT when neither label is there.
 */
export function nodeRefOf(labels: Record<string, string>, keys: NodeLabelKeys): NodeRef {
  const name = labels[keys.nodeLabel];
  if (name) return { name };
  const instanceId = labels[keys.instanceIdLabel];
  if (instanceId) return { instanceId };
  throw new PluginError(
    Code.InvalidArgument,
    `the event has neither a "${keys.nodeLabel}" nor an "${keys.instanceIdLabel}" label, so there is no node to drain`,
  );
}

/** How a {@link NodeRef} reads in messages. */
export function describeNodeRef(ref: NodeRef): string {
  return 'name' in ref ? `node "${ref.name}"` : `the node of instance ${ref.instanceId}`;
}

/** The instance id at the end of an AWS provider id, `aws:///<az>/<instance-id>`. */
export function instanceIdOf(providerID: string | undefined): string | undefined {
  const m = /^aws:\/\/\/(?:[^/]*\/)?(i-[0-9a-z]+)$/.exec(providerID ?? '');
  return m?.[1];
}

/**
 * Finds the node: a GET by name, or a list matched on `spec.providerID` (nodes
 * have no field selector for it). Undefined when there is no such node.
 */
export async function findNode(api: KubeApi, ref: NodeRef, retry: { deadline: Deadline; backoff: Backoff }): Promise<V1Node | undefined> {
  const doing = `looking up ${describeNodeRef(ref)}`;
  if ('name' in ref) {
    try {
      return await withRetries(() => api.readNode(ref.name), { ...retry, doing });
    } catch (err) {
      if (err instanceof PluginError && err.code === Code.NotFound) return undefined;
      throw err;
    }
  }
  const nodes = await withRetries(() => api.listNodes(), { ...retry, doing });
  return nodes.find((n) => instanceIdOf(n.spec?.providerID) === ref.instanceId);
}
