/**
 * What a wave drill reads back from the stand-ins once the wave is over: every
 * Kubernetes request and eviction, every AWS call, and the state the reclaimed
 * nodes and the groups were left in. Plain data, so it crosses a process boundary.
 */
import type { AwsStandIn, KubeApiServer } from '@hollowtrees/testkit';
import { WAVE_NAMESPACE, type WaveInstance } from './scenario.js';

export interface WaveRecords {
  kubeRequests: Array<{ method: string; path: string; watch: boolean; code: number; at: number }>;
  evictions: Array<{ node: string | undefined; code: number; at: number }>;
  awsCalls: Array<{ action: string; errorCode: string | undefined; at: number; instanceIds: string[] }>;
  /** Per reclaimed node at the end. */
  nodes: Array<{ node: string; cordoned: boolean; replicaSetPodsLeft: number; daemonSetPodsLeft: number }>;
  /** Per group at the end. */
  groups: Array<{ name: string; minSize: number; initialMinSize: number | undefined; desiredCapacity: number; tags: string[] }>;
  /** Detached instances still members of their group (should be none). */
  stillMembers: number;
  /** Calls the rate limiter answered with throttling, by bucket. */
  throttled: Record<string, number>;
}

/** The instance ids a call asks to replace: DetachInstances' list, CompleteLifecycleAction's instance. */
function replacedBy(action: string, params: Readonly<Record<string, string>>): string[] {
  if (action === 'DetachInstances') return Object.entries(params).filter(([k]) => k.startsWith('InstanceIds.member.')).map(([, v]) => v);
  if (action === 'CompleteLifecycleAction' && params.InstanceId) return [params.InstanceId];
  return [];
}

/** Reads everything the measurement needs from the stand-ins. */
export function collectRecords(kube: KubeApiServer, aws: AwsStandIn, instances: readonly WaveInstance[], initialMinSizes: ReadonlyMap<string, number>): WaveRecords {
  const detached = new Set(instances.map((i) => i.instanceId));
  return {
    kubeRequests: kube.requests.map((r) => ({ method: r.method, path: r.path, watch: r.query.watch === 'true' || r.query.watch === '1', code: r.code, at: r.at })),
    evictions: kube.cluster.evictions().map((e) => ({ node: e.node, code: e.code, at: e.atMs })),
    awsCalls: aws.calls.map((c) => ({ action: c.action, errorCode: c.errorCode, at: c.at, instanceIds: c.errorCode ? [] : replacedBy(c.action, c.params) })),
    nodes: instances.map(({ node }) => {
      const pods = kube.cluster.pods(node);
      const daemonSet = pods.filter((p) => p.metadata.ownerReferences?.some((o) => o.kind === 'DaemonSet')).length;
      return {
        node,
        cordoned: kube.cluster.node(node)?.spec?.unschedulable === true,
        replicaSetPodsLeft: pods.filter((p) => p.metadata.namespace === WAVE_NAMESPACE).length,
        daemonSetPodsLeft: daemonSet,
      };
    }),
    groups: [...aws.autoScaling.groups.values()].map((g) => ({
      name: g.name,
      minSize: g.minSize,
      initialMinSize: initialMinSizes.get(g.name),
      desiredCapacity: g.desiredCapacity,
      tags: [...g.tags.keys()],
    })),
    stillMembers: [...aws.autoScaling.groups.values()].reduce((n, g) => n + [...g.members.keys()].filter((id) => detached.has(id)).length, 0),
    throttled: aws.rateLimiter?.throttled() ?? {},
  };
}
