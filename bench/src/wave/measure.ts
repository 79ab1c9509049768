/** The drill's numbers, computed from what the stand-ins recorded (see records.ts). */
import { summarize, type Summary } from '../stats.js';
import type { WaveRecords } from './records.js';
import type { WaveInstance } from './scenario.js';

/** What one wave run measured; times are milliseconds after the first alert was posted. */
export interface WaveMeasurement {
  /** When the last reclaimed node was cordoned; undefined when some never were. */
  allCordonedMs: number | undefined;
  nodesCordoned: number;
  /** When half the reclaimed nodes had been cordoned. */
  halfCordonedMs: number | undefined;
  /** Eviction calls (any answer) the stand-in served before the last node was cordoned: work the cordons shared the CPUs with. */
  evictionsBeforeAllCordoned: number;
  /** Per node, when its last pod was evicted (201), over the nodes that had one evicted. */
  evictionsDoneMs: Summary;
  /** ReplicaSet pods still on reclaimed nodes at the end. */
  podsLeft: number;
  /** When the first and the last replacement was requested (DetachInstances or CompleteLifecycleAction succeeded). */
  firstReplacementMs: number | undefined;
  allReplacementsMs: number | undefined;
  replacementsRequested: number;
  /** Kubernetes calls per reclaimed node, by verb (an eviction's 429s apart). */
  kubeCallsPerNode: Record<string, number>;
  /** AWS calls per reclaimed instance, by action (throttled answers apart). */
  awsCallsPerNode: Record<string, number>;
  /** Calls the stand-in throttled, by bucket. */
  throttled: Record<string, number>;
  /** Whether the groups were left as found: MinSize back, no tag of ours left, and no reclaimed instance still a member. */
  groupsRestored: boolean;
}

/** `GET node`, `list pods`, `watch pods`, `create eviction`, ... */
export function kubeVerb(r: { method: string; path: string; watch: boolean }): string {
  const parts = r.path.split('/').filter(Boolean);
  const last = parts.at(-1) ?? '';
  if (last === 'eviction') return 'create eviction';
  const collection = ['nodes', 'pods', 'events'].includes(last);
  const resource = collection ? last : (parts.at(-2) ?? '');
  const singular = resource.replace(/s$/, '');
  if (r.method === 'GET') return collection ? `${r.watch ? 'watch' : 'list'} ${resource}` : `get ${singular}`;
  return `${{ POST: 'create', PATCH: 'patch', DELETE: 'delete', PUT: 'update' }[r.method] ?? r.method} ${singular}`;
}

const perNode = (counts: Map<string, number>, nodes: number): Record<string, number> =>
  Object.fromEntries([...counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => [k, Math.round((n / nodes) * 100) / 100]));

function count<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

/** Computes the measurement of a run whose first alert was posted at `t0` (wall clock, ms). */
export function measureWave(records: WaveRecords, instances: readonly WaveInstance[], t0: number): WaveMeasurement {
  const reclaimed = new Set(instances.map((i) => i.node));
  const cordonedAt = new Map<string, number>();
  for (const r of records.kubeRequests) {
    const node = /^\/api\/v1\/nodes\/([^/]+)$/.exec(r.path)?.[1];
    if (r.method === 'PATCH' && r.code === 200 && node && reclaimed.has(node) && !cordonedAt.has(node)) cordonedAt.set(node, r.at - t0);
  }
  const lastEviction = new Map<string, number>();
  for (const e of records.evictions) {
    if (e.code === 201 && e.node && reclaimed.has(e.node)) lastEviction.set(e.node, Math.max(lastEviction.get(e.node) ?? 0, e.at - t0));
  }
  const requestedAt = new Map<string, number>();
  const ids = new Set(instances.map((i) => i.instanceId));
  for (const c of records.awsCalls) for (const id of c.instanceIds) if (ids.has(id) && !requestedAt.has(id)) requestedAt.set(id, c.at - t0);
  const requestTimes = [...requestedAt.values()];
  const initialMin = new Map(records.groups.map((g) => [g.name, g.initialMinSize]));
  const allCordonedMs = cordonedAt.size === reclaimed.size ? Math.max(...cordonedAt.values()) : undefined;
  const cordonTimes = [...cordonedAt.values()].sort((a, b) => a - b);
  return {
    allCordonedMs,
    halfCordonedMs: cordonTimes.length >= reclaimed.size / 2 ? cordonTimes[Math.ceil(reclaimed.size / 2) - 1] : undefined,
    evictionsBeforeAllCordoned: allCordonedMs === undefined ? records.evictions.length : records.evictions.filter((e) => e.at - t0 < allCordonedMs).length,
    nodesCordoned: records.nodes.filter((n) => n.cordoned).length,
    evictionsDoneMs: summarize([...lastEviction.values()]),
    podsLeft: records.nodes.reduce((n, node) => n + node.replicaSetPodsLeft, 0),
    firstReplacementMs: requestTimes.length > 0 ? Math.min(...requestTimes) : undefined,
    allReplacementsMs: requestedAt.size === ids.size ? Math.max(...requestTimes) : undefined,
    replacementsRequested: requestedAt.size,
    kubeCallsPerNode: perNode(
      count(records.kubeRequests, (r) => {
        const verb = kubeVerb(r);
        return verb === 'create eviction' && r.code === 429 ? 'create eviction (429)' : verb;
      }),
      instances.length,
    ),
    awsCallsPerNode: perNode(count(records.awsCalls, (c) => (c.errorCode === 'Throttling' || c.errorCode === 'RequestLimitExceeded' ? `${c.action} (throttled)` : c.action)), instances.length),
    throttled: records.throttled,
    groupsRestored:
      records.stillMembers === 0 && records.groups.every((g) => g.minSize === initialMin.get(g.name) && g.tags.length === 0),
  };
}
