import type { Backoff } from '@hollowtrees/grpcplugin';
import type { V1Pod } from '@kubernetes/client-node';
import type { Deadline } from './deadline.js';
import type { KubeApi } from './kube-api.js';
import type { PodCache } from './pod-cache.js';
import { withRetries } from './retry.js';
import { waitForPodsGone } from './wait-for-deletion.js';

/** How a drain's calls are retried. */
export interface RetryContext {
  deadline: Deadline;
  backoff: Backoff;
}

/** Where a drain reads its node's pods, and how it waits for the evicted ones to go. */
export interface PodSource {
  /** The pods bound to the node. */
  podsOn(nodeName: string, retry: RetryContext): Promise<V1Pod[]>;
  /** Waits until none of `pods` is left on the node, or the deadline comes; answers those still there. */
  waitGone(nodeName: string, pods: readonly V1Pod[], retry: RetryContext): Promise<V1Pod[]>;
}

/** A pod list per node (`fieldSelector=spec.nodeName=…`), and a poll of it every `pollMs` while pods terminate. */
export function listingPodSource(api: KubeApi, pollMs: number): PodSource {
  return {
    podsOn: (nodeName, retry) => withRetries(() => api.listPodsOnNode(nodeName), { ...retry, doing: `listing the pods of node "${nodeName}"` }),
    waitGone: (nodeName, pods, retry) => waitForPodsGone(api, nodeName, pods, { ...retry, pollMs }),
  };
}

/**
 * The {@link PodCache}: no call per node at all, and the pods' DELETED events
 * instead of a poll. Until the cache's first list has landed a drain waits for
 * it up to `syncWaitMs`; past that (the API server refuses the list, say) it
 * falls back to `fallback` rather than drain with nothing.
 */
export function cachedPodSource(cache: PodCache, fallback: PodSource, syncWaitMs: number): PodSource {
  return {
    async podsOn(nodeName, retry) {
      if (await cache.whenSynced(Math.min(syncWaitMs, retry.deadline.remainingMs()))) return cache.podsOn(nodeName);
      return fallback.podsOn(nodeName, retry);
    },
    async waitGone(nodeName, pods, retry) {
      if (!cache.isSynced) return fallback.waitGone(nodeName, pods, retry);
      const left = new Set(await cache.waitGone(pods.flatMap((p) => p.metadata?.uid ?? []), retry.deadline.signal));
      return pods.filter((p) => left.has(p.metadata?.uid ?? ''));
    },
  };
}
