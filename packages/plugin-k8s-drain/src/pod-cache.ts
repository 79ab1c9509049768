import type { V1Pod } from '@kubernetes/client-node';
import type { KubeApi } from './kube-api.js';
import { MIRROR_ANNOTATION } from './pod-filter.js';
import { WatchedCache, type WatchOptions } from './watched-list.js';

/**
 * The fields of a pod a drain reads (which pods to evict, their grace period,
 * how to name them); the rest is not kept, so a cache of every pod of a large
 * cluster stays small (~0.5 KiB a pod).
 */
function trimmed(pod: V1Pod): V1Pod {
  const m = pod.metadata ?? {};
  const mirror = m.annotations?.[MIRROR_ANNOTATION];
  return {
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      deletionTimestamp: m.deletionTimestamp,
      ...(mirror !== undefined && { annotations: { [MIRROR_ANNOTATION]: mirror } }),
      ownerReferences: m.ownerReferences?.filter((o) => o.controller),
    },
    spec: {
      containers: [],
      nodeName: pod.spec?.nodeName,
      terminationGracePeriodSeconds: pod.spec?.terminationGracePeriodSeconds,
      volumes: pod.spec?.volumes?.filter((v) => v.emptyDir !== undefined).map((v) => ({ name: v.name, emptyDir: {} })),
    },
    status: { phase: pod.status?.phase },
  };
}

/**
 * Every pod of the cluster, by node, kept current by one watch
 * ({@link WatchedList}): the pod listing of a whole wave (one paged list, then
 * one stream of changes) instead of a list per node and a poll per node while
 * its pods terminate. A drain reads its node's pods from here and waits for
 * their DELETED events. Like any informer it can be a moment behind the API
 * server.
 */
export class PodCache extends WatchedCache<V1Pod> {
  private readonly byNode = new Map<string, Map<string, V1Pod>>();
  private readonly nodeOf = new Map<string, string>();
  private readonly goneWaiters = new Map<string, Set<() => void>>();

  constructor(api: KubeApi, options: WatchOptions) {
    super({ list: (token) => api.listPodPage(token), watch: (rv, onEvent, done) => api.watch('pods', rv, onEvent, done) }, { what: 'pod', ...options });
  }

  /** The pods bound to `node` as the cache has them (copies of the kept fields). */
  podsOn(node: string): V1Pod[] {
    return [...(this.byNode.get(node)?.values() ?? [])];
  }

  /**
   * Resolves when none of the pods with these uids is in the cache any more,
   * or when `signal` aborts; answers the uids still there.
   */
  waitGone(uids: readonly string[], signal: AbortSignal): Promise<string[]> {
    const left = new Set(uids.filter((uid) => this.nodeOf.has(uid)));
    if (left.size === 0 || signal.aborted) return Promise.resolve([...left]);
    return new Promise((resolve) => {
      const callbacks = new Map<string, () => void>();
      const finish = (): void => {
        signal.removeEventListener('abort', finish);
        for (const [uid, callback] of callbacks) this.goneWaiters.get(uid)?.delete(callback);
        resolve([...left]);
      };
      for (const uid of left) {
        const callback = (): void => {
          left.delete(uid);
          if (left.size === 0) finish();
        };
        callbacks.set(uid, callback);
        const waiting = this.goneWaiters.get(uid) ?? new Set();
        waiting.add(callback);
        this.goneWaiters.set(uid, waiting);
      }
      signal.addEventListener('abort', finish, { once: true });
    });
  }

  /** @internal A (re)list: pods the cache had and the list lacks are gone. */
  replaceAll(pods: readonly V1Pod[]): void {
    const before = new Set(this.nodeOf.keys());
    this.byNode.clear();
    this.nodeOf.clear();
    for (const pod of pods) this.put(pod);
    for (const uid of before) if (!this.nodeOf.has(uid)) this.gone(uid);
  }

  /** @internal */
  put(pod: V1Pod): void {
    const kept = trimmed(pod);
    const uid = kept.metadata?.uid;
    const node = kept.spec?.nodeName;
    if (!uid) return;
    const previous = this.nodeOf.get(uid);
    if (previous !== undefined && previous !== node) this.byNode.get(previous)?.delete(uid);
    if (!node) {
      this.nodeOf.delete(uid);
      return;
    }
    this.nodeOf.set(uid, node);
    const onNode = this.byNode.get(node) ?? new Map<string, V1Pod>();
    onNode.set(uid, kept);
    this.byNode.set(node, onNode);
  }

  /** @internal */
  remove(pod: V1Pod): void {
    const uid = pod.metadata?.uid;
    if (!uid) return;
    const node = this.nodeOf.get(uid);
    if (node !== undefined) this.byNode.get(node)?.delete(uid);
    this.nodeOf.delete(uid);
    this.gone(uid);
  }

  private gone(uid: string): void {
    for (const callback of [...(this.goneWaiters.get(uid) ?? [])]) callback();
    this.goneWaiters.delete(uid);
  }
}
