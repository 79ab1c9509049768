import type { V1Pod } from '@kubernetes/client-node';

/** Why a pod on the node is not evicted. */
export type SkipReason = 'daemonset' | 'mirror' | 'emptydir' | 'own pod';

/** The pods of a node, sorted by what the drain does with them. */
export interface EvictionPlan {
  /** To evict. */
  evict: V1Pod[];
  /** Already being deleted: not evicted again, but waited for. */
  terminating: V1Pod[];
  /** Left alone. */
  skipped: Array<{ pod: V1Pod; reason: SkipReason }>;
}

/**
 * True when the node holds no pod the drain moves: none to evict and none still terminating.
 * A retried drain finds the pods its first try evicted terminating; it must wait for them, not answer done.
 */
export function nothingToDrain(plan: EvictionPlan): boolean {
  return plan.evict.length === 0 && plan.terminating.length === 0;
}

// The kubelet creates a mirror pod for each static pod; the API cannot evict it.
export const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';

/** What {@link planEviction} leaves alone besides DaemonSet and mirror pods. */
export interface EvictionRules {
  deleteEmptyDirData: boolean;
  /** The drain's own pod: evicting it would stop the drain. */
  ownPod?: { namespace: string; name: string } | undefined;
}

function skipReason(pod: V1Pod, { deleteEmptyDirData, ownPod }: EvictionRules): SkipReason | undefined {
  if (ownPod && pod.metadata?.namespace === ownPod.namespace && pod.metadata.name === ownPod.name) return 'own pod';
  if (pod.metadata?.annotations?.[MIRROR_ANNOTATION] !== undefined) return 'mirror';
  // The DaemonSet controller would put it straight back, and it tolerates the cordon anyway.
  if (pod.metadata?.ownerReferences?.some((o) => o.controller && o.kind === 'DaemonSet')) return 'daemonset';
  if (!deleteEmptyDirData && pod.spec?.volumes?.some((v) => v.emptyDir !== undefined)) return 'emptydir';
  return undefined;
}

/**
 * Sorts a node's pods as `kubectl drain --ignore-daemonsets --force` does:
 * every pod is evicted, unmanaged ones included (the node is going away),
 * except DaemonSet and mirror pods, pods with emptyDir volumes unless
 * `deleteEmptyDirData`, and the drain's own pod.
 */
export function planEviction(pods: readonly V1Pod[], rules: EvictionRules): EvictionPlan {
  const plan: EvictionPlan = { evict: [], terminating: [], skipped: [] };
  for (const pod of pods) {
    const reason = skipReason(pod, rules);
    if (reason) plan.skipped.push({ pod, reason });
    else if (pod.metadata?.deletionTimestamp) plan.terminating.push(pod);
    else plan.evict.push(pod);
  }
  return plan;
}

/** `namespace/name`, as messages and logs name a pod. */
export function podKey(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? 'default'}/${pod.metadata?.name ?? ''}`;
}
