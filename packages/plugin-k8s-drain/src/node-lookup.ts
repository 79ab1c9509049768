import { Code, PluginError } from '@hollowtrees/grpcplugin';
import type { V1Node } from '@kubernetes/client-node';
import type { KubeApi } from './kube-api.js';
import type { Backoff } from '@hollowtrees/grpcplugin';
import { withRetries } from './retry.js';
import type { Deadline } from './deadline.js';

/**
 * Which node an event is about: by name, or by the EC2 instance behind it. An event that gives both
 * is about that instance: the cloud reuses node names (`ip-10-0-0-1` for a new instance at the old
 * one's address), so the node of that name may be another instance's by now.
 */
export type NodeRef = { readonly name: string; readonly instanceId?: string | undefined } | { readonly instanceId: string };

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
  const instanceId = labels[keys.instanceIdLabel] || undefined;
  if (name) return instanceId ? { name, instanceId } : { name };
  if (instanceId) return { instanceId };
  throw new PluginError(
    Code.InvalidArgument,
    `the event has neither a "${keys.nodeLabel}" nor an "${keys.instanceIdLabel}" label, so there is no node to drain`,
  );
}

/** How a {@link NodeRef} reads in messages. */
export function describeNodeRef(ref: NodeRef): string {
  if (!('name' in ref)) return `the node of instance ${ref.instanceId}`;
  return ref.instanceId === undefined ? `node "${ref.name}"` : `node "${ref.name}" of instance ${ref.instanceId}`;
}

/**
 * Whether `node` is the one `ref` means: when `ref` names an instance too, the node's
 * `spec.providerID` must not name another (one it cannot read, not AWS's, is taken at its name).
 */
export function isNodeOf(node: V1Node, ref: NodeRef): boolean {
  const instanceId = instanceIdOf(node.spec?.providerID);
  return ref.instanceId === undefined || instanceId === undefined || instanceId === ref.instanceId;
}

/** The instance id at the end of an AWS provider id, `aws:///<az>/<instance-id>`. */
export function instanceIdOf(providerID: string | undefined): string | undefined {
  const m = /^aws:\/\/\/(?:[^/]*\/)?(i-[0-9a-z]+)$/.exec(providerID ?? '');
  return m?.[1];
}

/**
 * Finds the node: a GET by name, or a list matched on `spec.providerID` (nodes
 * have no field selector for it). A `ref` with both: the node of that name if it is
 * the instance's ({@link isNodeOf}), else the instance's node under any name.
 * Undefined when there is no such node.
 */
export async function findNode(api: KubeApi, ref: NodeRef, retry: { deadline: Deadline; backoff: Backoff }): Promise<V1Node | undefined> {
  const doing = `looking up ${describeNodeRef(ref)}`;
  if ('name' in ref) {
    const named = await withRetries(() => api.readNode(ref.name), { ...retry, doing }).catch((err: unknown) => {
      if (err instanceof PluginError && err.code === Code.NotFound) return undefined;
      throw err;
    });
    if ((named && isNodeOf(named, ref)) || ref.instanceId === undefined) return named;
  }
  const { instanceId } = ref;
  const nodes = await withRetries(() => api.listNodes(), { ...retry, doing });
  return nodes.find((n) => instanceIdOf(n.spec?.providerID) === instanceId);
}
