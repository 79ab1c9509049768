import type { V1Node } from '@kubernetes/client-node';
import type { KubeApi } from './kube-api.js';
import { instanceIdOf, isNodeOf, type NodeRef } from './node-lookup.js';
import { WatchedCache, type WatchOptions } from './watched-list.js';

/** Deleted nodes' names and instance ids remembered (a wave of reclaims is a few thousand nodes). */
const MAX_DELETED = 20_000;

/** The fields of a node a drain reads (to find it and to cordon it); the rest, its status above all, is not kept. */
function trimmed(node: V1Node): V1Node {
  const m = node.metadata ?? {};
  return {
    metadata: { name: m.name, uid: m.uid, resourceVersion: m.resourceVersion, labels: m.labels },
    spec: { providerID: node.spec?.providerID, unschedulable: node.spec?.unschedulable, taints: node.spec?.taints },
  };
}

/**
 * Every node of the cluster, by name and by the EC2 instance in its
 * `spec.providerID`, kept current by one watch ({@link WatchedList}): a drain
 * finds its node without a GET, and an event that names only the instance
 * needs no list of every node. The resourceVersion it holds can be a moment
 * old: the cordon's patch then gets 409 Conflict, and reads the node again.
 */
export class NodeCache extends WatchedCache<V1Node> {
  private readonly byName = new Map<string, V1Node>();
  private readonly byInstance = new Map<string, string>();
  /** `name:…` and `instance:…` of the nodes the watch saw deleted, oldest first; a name taken again is dropped. */
  private readonly deleted = new Set<string>();

  constructor(api: KubeApi, options: WatchOptions) {
    super({ list: (token) => api.listNodePage(token), watch: (rv, onEvent, done) => api.watch('nodes', rv, onEvent, done) }, { what: 'node', ...options });
  }

  /** The node `ref` points at, as the cache has it (for a `ref` with both a name and an instance, as node-lookup's `findNode` picks it). */
  find(ref: NodeRef): V1Node | undefined {
    if ('name' in ref) {
      const named = this.byName.get(ref.name);
      if ((named && isNodeOf(named, ref)) || ref.instanceId === undefined) return named;
    }
    const name = ref.instanceId === undefined ? undefined : this.byInstance.get(ref.instanceId);
    return name === undefined ? undefined : this.byName.get(name);
  }

  /**
   * Whether the watch saw the node `ref` points at deleted (its instance reclaimed, the cloud node
   * controller removed it): by its instance when `ref` names one, else by its name.
   */
  sawDeleted(ref: NodeRef): boolean {
    return this.deleted.has(ref.instanceId === undefined ? `name:${'name' in ref ? ref.name : ''}` : `instance:${ref.instanceId}`);
  }

  /**
   * @internal A (re)list: replaces what the cache holds. A node it held that the list lacks (or has under its name as
   * another node object) was deleted while the watch was down: remembered as the watch would have seen it.
   */
  replaceAll(nodes: readonly V1Node[]): void {
    const before = [...this.byName.values()];
    this.byName.clear();
    this.byInstance.clear();
    for (const node of nodes) this.put(node);
    for (const old of before) {
      const name = old.metadata?.name ?? '';
      const now = this.byName.get(name);
      if (!now) this.remember(name, instanceIdOf(old.spec?.providerID));
      else if (now.metadata?.uid !== old.metadata?.uid) {
        // The name taken again: only the old instance is gone.
        const instanceId = instanceIdOf(old.spec?.providerID);
        if (instanceId && instanceId !== instanceIdOf(now.spec?.providerID)) this.remember(undefined, instanceId);
      }
    }
  }

  /** @internal */
  put(node: V1Node): void {
    const kept = trimmed(node);
    const name = kept.metadata?.name;
    if (!name) return;
    this.byName.set(name, kept);
    this.deleted.delete(`name:${name}`);
    const instanceId = instanceIdOf(kept.spec?.providerID);
    if (instanceId) this.byInstance.set(instanceId, name);
  }

  /** @internal */
  remove(node: V1Node): void {
    const name = node.metadata?.name;
    if (!name) return;
    this.byName.delete(name);
    const instanceId = instanceIdOf(node.spec?.providerID);
    if (instanceId && this.byInstance.get(instanceId) === name) this.byInstance.delete(instanceId);
    this.remember(name, instanceId);
  }

  /** Remembers a node deleted, by its name (when given) and its instance. */
  private remember(name: string | undefined, instanceId: string | undefined): void {
    for (const key of [...(name !== undefined ? [`name:${name}`] : []), ...(instanceId ? [`instance:${instanceId}`] : [])]) {
      // Re-inserted, so the oldest is forgotten first: a node deleted hours ago has had every notice it will get.
      this.deleted.delete(key);
      this.deleted.add(key);
    }
    while (this.deleted.size > MAX_DELETED) this.deleted.delete(this.deleted.values().next().value!);
  }
}
