import { randomUUID } from 'node:crypto';
import { wallClockMs } from '../listen.js';
import { applyPatch } from './patch.js';
import { fieldSelector, labelSelector, matchesLabels } from './selectors.js';
import { WatchHistory } from './watch-history.js';
import { LeaseTable } from './leases.js';
import {
  alreadyExists,
  badRequest,
  conflict,
  disruptionBudgetViolated,
  invalid,
  multipleBudgets,
  namespaceTerminating,
  notFound,
  success,
  type Resource,
} from './status.js';
import type { Event, Node, Pod, PodDisruptionBudget, PodDisruptionBudgetStatus, Status, WatchEvent } from './types.js';

const NODES: Resource = { resource: 'nodes' };
const PODS: Resource = { resource: 'pods' };
const EVENTS: Resource = { resource: 'events' };

/** Options of the simulated cluster; every field has a default. */
export interface KubeClusterOptions {
  /**
   * Real milliseconds one second of a pod's termination grace period lasts, so a
   * 30 s grace period passes in 300 ms by default. Default 10.
   */
  msPerGraceSecond?: number;
  /**
   * When an evicted pod owned by a controller other than a DaemonSet is gone, add
   * a replacement (same labels and owner) on another schedulable node, as its
   * ReplicaSet or StatefulSet would (finished pods are not replaced); this is
   * what lets a budget allow the next eviction. Default true.
   */
  replaceEvictedPods?: boolean;
  /** Pod events a watch can resume from; older resourceVersions get 410 Expired. Default 50 000. */
  watchHistory?: number;
}

/** One call of the eviction API, in the order they arrived. */
export interface EvictionRecord {
  namespace: string;
  name: string;
  /** The node the pod was on, when it existed. */
  node: string | undefined;
  /** HTTP code answered: 201 evicted, 429 blocked by a budget, 404 no such pod, 409 another pod than the uid precondition names, 500 several budgets. */
  code: number;
  /** The grace period the deletion used, when the pod was evicted. */
  gracePeriodSeconds: number | undefined;
  at: Date;
  /** The same moment as `at`, with sub-millisecond precision: `wallClockMs()`. */
  atMs: number;
}

/** A pod leaving the cluster (its grace period over, or deleted at once), in the order they went. */
export interface PodRemovalRecord {
  namespace: string;
  name: string;
  /** The node it was bound to, if any. */
  node: string | undefined;
  /** When it went: `wallClockMs()`, comparable with {@link EvictionRecord.atMs}. */
  atMs: number;
}

/** A list answer: `items` plus `metadata.continue` when `limit` cut it short. */
export interface ObjectList<T> {
  kind: string;
  apiVersion: 'v1';
  metadata: { resourceVersion: string; continue?: string; remainingItemCount?: number };
  items: T[];
}

/** What a list call may ask for. */
export interface ListQuery {
  fieldSelector: string | null;
  labelSelector: string | null;
  limit: number | null;
  continueToken: string | null;
}


const keyOf = (namespace: string, name: string): string => `${namespace}/${name}`;
/** Etcd orders keys bytewise; so does the stand-in (not by locale). */
const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const podKeyOf = (pod: Pod): string => keyOf(pod.metadata.namespace ?? 'default', pod.metadata.name);

/**
 * An integer, or a percentage of `total` rounded up, as `intstr` values of a
 * PodDisruptionBudget are scaled.
 */
function scaled(value: number | string, total: number, field: string): number {
  if (typeof value === 'number') return value;
  const m = /^(\d+)%$/.exec(value);
  if (!m) throw new Error(`PodDisruptionBudget ${field}: "${value}" is neither an integer nor a percentage`);
  return Math.ceil((Number(m[1]) * total) / 100);
}
const isReady = (pod: Pod): boolean => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const isTerminal = (pod: Pod): boolean => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
/** What a budget counts as healthy: scheduled, running, ready, not terminating. */
const isHealthy = (pod: Pod): boolean => Boolean(pod.spec?.nodeName) && pod.status?.phase === 'Running' && isReady(pod) && !pod.metadata.deletionTimestamp;

/**
 * The state of the simulated cluster and the API semantics over it: nodes,
 * pods, PodDisruptionBudgets, events, evictions. API operations throw
 * `StatusError`s shaped like the real API server's answers. Getters return
 * copies, so a test can keep them while the cluster moves on.
 */
export class KubeCluster {
  private readonly nodeMap = new Map<string, Node>();
  private readonly podMap = new Map<string, Pod>();
  /** Pod keys by `spec.nodeName`: a node's pods without scanning the cluster. */
  private readonly podsByNode = new Map<string, Set<string>>();
  private readonly pdbMap = new Map<string, PodDisruptionBudget & { expectedPods: number }>();
  /** Pod keys each budget selects (pod labels never change here), and the budgets of each pod. */
  private readonly pdbPods = new Map<string, Set<string>>();
  private readonly podBudgets = new Map<string, string[]>();
  /**
   * Healthy pods per budget, kept as pods come, start terminating and go (the
   * only changes the stand-in makes to a pod), so an eviction's budget check
   * costs the same with ten pods or ten thousand.
   */
  private readonly pdbHealthy = new Map<string, number>();
  /** Bumped on every pod stored or removed: a sorted listing of all pods is reused until it changes. */
  private podSetVersion = 0;
  private sortedPods: { version: number; pods: Pod[] } | undefined;
  private readonly podHistory: WatchHistory<Pod>;
  private readonly nodeHistory: WatchHistory<Node>;
  private readonly eventList: Event[] = [];
  private readonly evictionLog: EvictionRecord[] = [];
  private readonly removalLog: PodRemovalRecord[] = [];
  /** Namespaces being deleted: NamespaceLifecycle admission refuses creates in them, evictions included. */
  private readonly terminatingNamespaces = new Set<string>();
  /** The timers that end the terminating pods' grace periods, by pod key. */
  private readonly terminations = new Map<string, NodeJS.Timeout>();
  private readonly msPerGraceSecond: number;
  private readonly replaceEvictedPods: boolean;

  private resourceVersion = 1000;
  /** `coordination.k8s.io/v1` Leases, on the cluster's resourceVersion counter. */
  readonly leases = new LeaseTable({
    stamp: (lease) => this.stamp(lease),
    current: () => String(this.resourceVersion),
    page: (kind, all, query) => this.page(kind, all, query),
  });
  private generated = 0;

  constructor(options: KubeClusterOptions = {}) {
    this.msPerGraceSecond = options.msPerGraceSecond ?? 10;
    this.replaceEvictedPods = options.replaceEvictedPods ?? true;
    this.podHistory = new WatchHistory(options.watchHistory ?? 50_000);
    this.nodeHistory = new WatchHistory(options.watchHistory ?? 50_000);
  }

  // ---- set-up and inspection (for tests) ----

  /** Adds a node; fills uid, resourceVersion, creationTimestamp. */
  addNode(node: Node): Node {
    const stored: Node = { ...structuredClone(node), apiVersion: 'v1', kind: 'Node', spec: { ...node.spec } };
    this.stamp(stored);
    this.nodeMap.set(node.metadata.name, stored);
    this.nodeHistory.record('ADDED', stored);
    return structuredClone(stored);
  }

  /** Removes a node, as the cloud node controller does once its instance is gone; its pods stay (the pod GC's job). */
  deleteNode(name: string): void {
    const node = this.nodeMap.get(name);
    if (!node) throw new Error(`no node ${name}`);
    this.nodeMap.delete(name);
    this.nodeHistory.record('DELETED', node);
  }

  /** Adds a pod; namespace defaults to `default`, status to Running and Ready. */
  addPod(pod: Pod): Pod {
    const stored: Pod = {
      ...structuredClone(pod),
      apiVersion: 'v1',
      kind: 'Pod',
      spec: { ...pod.spec },
      status: pod.status ?? { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
    };
    stored.metadata.namespace ??= 'default';
    this.stamp(stored);
    this.storePod(stored);
    return structuredClone(stored);
  }

  /**
   * Adds a budget. For `maxUnavailable`, the expected pod count (the controller's
   * replicas) is the number of matching pods now.
   */
  addPodDisruptionBudget(pdb: PodDisruptionBudget): void {
    const namespace = pdb.metadata.namespace ?? 'default';
    const stored = { ...structuredClone(pdb), expectedPods: 0 };
    stored.metadata.namespace = namespace;
    this.stamp(stored);
    const key = keyOf(namespace, pdb.metadata.name);
    this.pdbMap.set(key, stored);
    const members = [...this.podMap.values()].filter((p) => this.selects(stored, p));
    this.pdbPods.set(key, new Set(members.map(podKeyOf)));
    for (const pod of members) this.podBudgets.set(podKeyOf(pod), [...(this.podBudgets.get(podKeyOf(pod)) ?? []), key]);
    this.pdbHealthy.set(key, members.filter(isHealthy).length);
    stored.expectedPods = members.filter((p) => !p.metadata.deletionTimestamp).length;
    // Checked now, so a typo in a test's budget fails where it is made.
    this.statusOf(stored);
  }

  /** The budget's status as the disruption controller would compute it now. */
  pdbStatus(namespace: string, name: string): PodDisruptionBudgetStatus {
    const pdb = this.pdbMap.get(keyOf(namespace, name));
    if (!pdb) throw new Error(`no PodDisruptionBudget ${namespace}/${name}`);
    return this.statusOf(pdb);
  }

  /** A copy of the node, or undefined. */
  node(name: string): Node | undefined {
    const node = this.nodeMap.get(name);
    return node && structuredClone(node);
  }

  /** Copies of all nodes. */
  nodes(): Node[] {
    return [...this.nodeMap.values()].map((n) => structuredClone(n));
  }

  /** Copies of the pods, optionally only those on `nodeName`. */
  pods(nodeName?: string): Pod[] {
    return this.candidatePods(nodeName).map((p) => structuredClone(p));
  }

  /** Copies of the recorded events, oldest first. */
  events(): Event[] {
    return this.eventList.map((e) => structuredClone(e));
  }

  /**
   * Marks `namespace` as being deleted: from now on an eviction of a pod in it
   * is refused 403 with cause `NamespaceTerminating`, as the API server's
   * NamespaceLifecycle admission refuses every create there. Its pods stay
   * until the test deletes them (the namespace controller's job).
   */
  terminateNamespace(namespace: string): void {
    this.terminatingNamespaces.add(namespace);
  }

  /** Every eviction call, oldest first. */
  evictions(): EvictionRecord[] {
    return this.evictionLog.map((e) => ({ ...e }));
  }

  /** Every pod removal, oldest first: with {@link evictions}, when each node's pods were evicted and gone. */
  removals(): PodRemovalRecord[] {
    return this.removalLog.map((r) => ({ ...r }));
  }

  /** Stops pending terminations (the pods stay as they are) and ends every watch. */
  stop(): void {
    for (const t of this.terminations.values()) clearTimeout(t);
    this.terminations.clear();
    this.podHistory.clear();
    this.nodeHistory.clear();
  }

  // ---- API operations ----

  /** `GET /api/v1/nodes`. */
  listNodes(query: ListQuery): ObjectList<Node> {
    return this.page('NodeList', [...this.nodeMap.values()].filter(this.nodeFilter(query)), query);
  }

  /** `GET /api/v1/nodes/{name}`. */
  readNode(name: string): Node {
    const node = this.nodeMap.get(name);
    if (!node) throw notFound(NODES, name);
    return structuredClone(node);
  }

  /**
   * `PATCH /api/v1/nodes/{name}`. A `metadata.resourceVersion` in the patched
   * result that differs from the stored one is a precondition, answered 409.
   */
  patchNode(name: string, contentType: string, body: unknown): Node {
    const current = this.nodeMap.get(name);
    if (!current) throw notFound(NODES, name);
    const patched = applyPatch(structuredClone(current), contentType, body, 'Node', name);
    if (patched.metadata?.resourceVersion !== current.metadata.resourceVersion) throw conflict(NODES, name);
    if (patched.metadata.name !== name) throw badRequest('the name of the object does not match the name on the URL');
    this.stamp(patched);
    this.nodeMap.set(name, patched);
    this.nodeHistory.record('MODIFIED', patched);
    return structuredClone(patched);
  }

  /** `GET /api/v1/pods` and `GET /api/v1/namespaces/{ns}/pods`. */
  listPods(namespace: string | undefined, query: ListQuery): ObjectList<Pod> {
    const matches = this.podFilter(namespace, query);
    return this.page('PodList', this.candidatePods(nodeNameOf(query.fieldSelector)).filter(matches), query);
  }

  /**
   * `GET /api/v1/pods?watch=true` (and per namespace): calls `send` with each
   * change of a matching pod, in resourceVersion order, until the returned
   * function is called. Without a resourceVersion (or with `"0"`) it starts
   * with an ADDED event per matching pod, as the API server does; from a
   * resourceVersion it replays what came after it.
   * @throws StatusError 410 Expired when the resourceVersion is older than the history kept.
   */
  watchPods(namespace: string | undefined, query: ListQuery, resourceVersion: string | null, send: (event: WatchEvent<Pod>) => void): () => void {
    return this.podHistory.watch(resourceVersion, this.resourceVersion, () => this.podMap.values(), this.podFilter(namespace, query), send);
  }

  /** `GET /api/v1/nodes?watch=true`: as {@link watchPods}, for nodes. */
  watchNodes(query: ListQuery, resourceVersion: string | null, send: (event: WatchEvent<Node>) => void): () => void {
    return this.nodeHistory.watch(resourceVersion, this.resourceVersion, () => this.nodeMap.values(), this.nodeFilter(query), send);
  }

  /** `GET /api/v1/namespaces/{ns}/pods/{name}`. */
  readPod(namespace: string, name: string): Pod {
    const pod = this.podMap.get(keyOf(namespace, name));
    if (!pod) throw notFound(PODS, name);
    return structuredClone(pod);
  }

  /** `DELETE /api/v1/namespaces/{ns}/pods/{name}`: starts the pod's termination; answers the pod. */
  deletePod(namespace: string, name: string, gracePeriodSeconds: number | undefined): Pod {
    const pod = this.podMap.get(keyOf(namespace, name));
    if (!pod) throw notFound(PODS, name);
    this.terminate(pod, gracePeriodSeconds);
    return structuredClone(pod);
  }

  /**
   * `POST /api/v1/namespaces/{ns}/pods/{name}/eviction`, with the eviction
   * subresource's rules: terminal, pending and terminating pods are deleted
   * without a budget check; a pod under two budgets gets 500; under one budget
   * that allows no disruption, 429; a pod whose uid is not the one
   * `deleteOptions.preconditions.uid` names (deleted and recreated under its
   * name since), 409 once the budget allows, as the API server's deletion refuses it.
   */
  evictPod(namespace: string, name: string, body: unknown): Status {
    const eviction = (body ?? {}) as {
      apiVersion?: string;
      kind?: string;
      metadata?: { name?: string; namespace?: string };
      deleteOptions?: { gracePeriodSeconds?: number; preconditions?: { uid?: string } };
    };
    // The API server decodes the body as a policy Eviction: an apiVersion or kind left out is filled in, another is refused.
    const { apiVersion = 'policy/v1', kind = 'Eviction' } = eviction;
    if (kind !== 'Eviction' || !['policy/v1', 'policy/v1beta1'].includes(apiVersion)) {
      throw badRequest(`${kind} in version "${apiVersion.split('/').at(-1)}" cannot be handled as a Eviction`);
    }
    if (eviction.metadata?.name !== name) throw badRequest('name in URL does not match name in Eviction object');
    if (eviction.metadata.namespace !== undefined && eviction.metadata.namespace !== namespace) {
      throw badRequest('the namespace of the provided eviction does not match the namespace sent on the request');
    }
    const pod = this.podMap.get(keyOf(namespace, name));
    const record = (code: number, gracePeriodSeconds?: number): void => {
      const atMs = wallClockMs();
      this.evictionLog.push({ namespace, name, node: pod?.spec?.nodeName, code, gracePeriodSeconds, at: new Date(atMs), atMs });
    };
    try {
      // Admission runs before the eviction's own checks: a pod being deleted with its namespace is refused too.
      if (this.terminatingNamespaces.has(namespace)) throw namespaceTerminating(PODS, name, namespace);
      if (!pod) throw notFound(PODS, name);
      this.checkBudget(pod);
      const uid = eviction.deleteOptions?.preconditions?.uid;
      if (uid && uid !== pod.metadata.uid) {
        throw conflict({ resource: 'Pod' }, name, `the UID in the precondition (${uid}) does not match the UID in record (${pod.metadata.uid}). The object might have been deleted and then recreated`);
      }
    } catch (err) {
      record((err as { status?: Status }).status?.code ?? 500);
      throw err;
    }
    const grace = this.terminate(pod, eviction.deleteOptions?.gracePeriodSeconds);
    record(201, grace);
    return success(201);
  }

  /** `POST /api/v1/namespaces/{ns}/events`. */
  createEvent(namespace: string, body: unknown): Event {
    const event = structuredClone((body ?? {}) as Event);
    event.metadata ??= { name: '' };
    if (event.metadata.namespace && event.metadata.namespace !== namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    if (!event.metadata.name) {
      if (!event.metadata.generateName) throw invalid('Event', '', 'metadata.name', 'Required value: name or generateName is required');
      event.metadata.name = `${event.metadata.generateName}${this.nextSuffix()}`;
    }
    if (this.eventList.some((e) => e.metadata.namespace === namespace && e.metadata.name === event.metadata.name)) {
      throw alreadyExists(EVENTS, event.metadata.name);
    }
    Object.assign(event, { apiVersion: 'v1', kind: 'Event' });
    event.metadata.namespace = namespace;
    this.stamp(event);
    this.eventList.push(event);
    return structuredClone(event);
  }

  // ---- internals ----

  private stamp(obj: { metadata: { uid?: string; resourceVersion?: string; creationTimestamp?: string } }): void {
    obj.metadata.uid ??= randomUUID();
    obj.metadata.creationTimestamp ??= new Date().toISOString();
    obj.metadata.resourceVersion = String(++this.resourceVersion);
  }

  private nextSuffix(): string {
    return (++this.generated).toString(36).padStart(5, '0');
  }

  private page<T extends { metadata: { name: string; namespace?: string } }>(kind: string, all: T[], query: ListQuery): ObjectList<T> {
    const sorted = all.sort((a, b) => byKey(keyOf(a.metadata.namespace ?? '', a.metadata.name), keyOf(b.metadata.namespace ?? '', b.metadata.name)));
    const start = query.continueToken ? Number(Buffer.from(query.continueToken, 'base64url').toString()) : 0;
    if (!Number.isInteger(start) || start < 0) throw badRequest('continue key is not valid');
    const end = query.limit && query.limit > 0 ? start + query.limit : sorted.length;
    const items = sorted.slice(start, end).map((o) => structuredClone(o));
    const metadata: ObjectList<T>['metadata'] = { resourceVersion: String(this.resourceVersion) };
    if (end < sorted.length) {
      metadata.continue = Buffer.from(String(end)).toString('base64url');
      metadata.remainingItemCount = sorted.length - end;
    }
    return { kind, apiVersion: 'v1', metadata, items };
  }

  private selects(pdb: PodDisruptionBudget, pod: Pod): boolean {
    return pod.metadata.namespace === pdb.metadata.namespace && matchesLabels(pdb.spec.selector.matchLabels, pod.metadata.labels);
  }

  private statusOf(pdb: PodDisruptionBudget & { expectedPods: number }): PodDisruptionBudgetStatus {
    const currentHealthy = this.pdbHealthy.get(keyOf(pdb.metadata.namespace ?? 'default', pdb.metadata.name)) ?? 0;
    const { minAvailable, maxUnavailable } = pdb.spec;
    const desiredHealthy =
      minAvailable !== undefined
        ? scaled(minAvailable, pdb.expectedPods, 'minAvailable')
        : Math.max(0, pdb.expectedPods - scaled(maxUnavailable ?? 0, pdb.expectedPods, 'maxUnavailable'));
    return {
      currentHealthy,
      desiredHealthy,
      disruptionsAllowed: Math.max(0, currentHealthy - desiredHealthy),
      expectedPods: pdb.expectedPods,
    };
  }

  private checkBudget(pod: Pod): void {
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed' || phase === 'Pending' || pod.metadata.deletionTimestamp) return;
    const pdbs = (this.podBudgets.get(podKeyOf(pod)) ?? []).flatMap((k) => this.pdbMap.get(k) ?? []);
    if (pdbs.length > 1) throw multipleBudgets();
    const pdb = pdbs[0];
    if (!pdb) return;
    const status = this.statusOf(pdb);
    // An unready pod does not count as healthy, so evicting it costs the budget nothing.
    if (!isReady(pod) && status.currentHealthy >= status.desiredHealthy && status.desiredHealthy > 0) return;
    if (status.disruptionsAllowed === 0) throw disruptionBudgetViolated(pdb.metadata.name, status.desiredHealthy, status.currentHealthy);
  }

  /**
   * Marks the pod terminating and removes it after its (scaled) grace period; returns the grace period used.
   * A terminating pod's grace period is cut short by a request for a shorter one (as the API server does), else kept.
   */
  private terminate(pod: Pod, requested: number | undefined): number {
    const grace = requested ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
    const key = podKeyOf(pod);
    const terminating = pod.metadata.deletionTimestamp !== undefined;
    if (terminating) {
      const current = pod.metadata.deletionGracePeriodSeconds ?? grace;
      if (requested === undefined || requested >= current) return current;
      clearTimeout(this.terminations.get(key));
      this.terminations.delete(key);
    }
    // The API server removes at once what no kubelet runs: unscheduled and finished pods.
    if (!pod.spec?.nodeName || isTerminal(pod) || grace === 0) {
      this.removePod(pod);
      this.replace(pod);
      return grace;
    }
    if (!terminating) this.countHealthy(pod, -1);
    pod.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString();
    pod.metadata.deletionGracePeriodSeconds = grace;
    this.stamp(pod);
    this.emitPod('MODIFIED', pod);
    this.terminations.set(
      key,
      setTimeout(() => {
        this.terminations.delete(key);
        this.removePod(pod);
        this.replace(pod);
      }, grace * this.msPerGraceSecond),
    );
    return grace;
  }

  /** The pods on `nodeName` (all pods when undefined), from the index. */
  private candidatePods(nodeName: string | undefined): Pod[] {
    if (nodeName === undefined) {
      // The pages of one listing of every pod reuse one sorted copy while no pod comes or goes.
      if (this.sortedPods?.version !== this.podSetVersion) {
        const pods = [...this.podMap.values()].sort((a, b) => byKey(podKeyOf(a), podKeyOf(b)));
        this.sortedPods = { version: this.podSetVersion, pods };
      }
      return [...this.sortedPods.pods];
    }
    return [...(this.podsByNode.get(nodeName) ?? [])].flatMap((k) => this.podMap.get(k) ?? []);
  }

  /** What a node list or watch selects. */
  private nodeFilter(query: ListQuery): (node: Node) => boolean {
    const byField = fieldSelector<Node>(query.fieldSelector, {
      'metadata.name': (n) => n.metadata.name,
      'spec.unschedulable': (n) => String(n.spec?.unschedulable ?? false),
    });
    const byLabel = labelSelector(query.labelSelector);
    return (n) => byField(n) && byLabel(n.metadata.labels);
  }

  /** What a pod list or watch selects. */
  private podFilter(namespace: string | undefined, query: ListQuery): (pod: Pod) => boolean {
    const byField = fieldSelector<Pod>(query.fieldSelector, {
      'spec.nodeName': (p) => p.spec?.nodeName ?? '',
      'metadata.name': (p) => p.metadata.name,
      'metadata.namespace': (p) => p.metadata.namespace ?? '',
      'status.phase': (p) => p.status?.phase ?? '',
    });
    const byLabel = labelSelector(query.labelSelector);
    return (p) => (namespace === undefined || p.metadata.namespace === namespace) && byField(p) && byLabel(p.metadata.labels);
  }

  /** Stores a new pod with its indexes, and tells the watches. */
  private storePod(pod: Pod): void {
    const key = podKeyOf(pod);
    this.podMap.set(key, pod);
    const node = pod.spec?.nodeName;
    if (node !== undefined) {
      const onNode = this.podsByNode.get(node) ?? new Set<string>();
      onNode.add(key);
      this.podsByNode.set(node, onNode);
    }
    const budgets = [...this.pdbMap].filter(([, pdb]) => this.selects(pdb, pod)).map(([pdbKey]) => pdbKey);
    for (const pdbKey of budgets) this.pdbPods.get(pdbKey)?.add(key);
    if (budgets.length > 0) this.podBudgets.set(key, budgets);
    this.countHealthy(pod, +1);
    this.podSetVersion++;
    this.emitPod('ADDED', pod);
  }

  /** Removes a pod and its index entries, and tells the watches (the deletion gets a resourceVersion of its own). */
  private removePod(pod: Pod): void {
    const key = podKeyOf(pod);
    this.podMap.delete(key);
    const node = pod.spec?.nodeName;
    if (node !== undefined) this.podsByNode.get(node)?.delete(key);
    this.countHealthy(pod, -1);
    for (const pdbKey of this.podBudgets.get(key) ?? []) this.pdbPods.get(pdbKey)?.delete(key);
    this.podBudgets.delete(key);
    this.podSetVersion++;
    this.removalLog.push({ namespace: pod.metadata.namespace ?? 'default', name: pod.metadata.name, node, atMs: wallClockMs() });
    this.stamp(pod);
    this.emitPod('DELETED', pod);
  }

  /** Adds `delta` to the healthy count of each budget of `pod`, if the pod counts as healthy now. */
  private countHealthy(pod: Pod, delta: 1 | -1): void {
    if (!isHealthy(pod)) return;
    for (const pdbKey of this.podBudgets.get(podKeyOf(pod)) ?? []) this.pdbHealthy.set(pdbKey, (this.pdbHealthy.get(pdbKey) ?? 0) + delta);
  }

  private emitPod(type: 'ADDED' | 'MODIFIED' | 'DELETED', pod: Pod): void {
    this.podHistory.record(type, pod);
  }

  private replace(pod: Pod): void {
    const owner = pod.metadata.ownerReferences?.find((o) => o.controller);
    // A finished pod is not replaced: its Job is done with it.
    if (!this.replaceEvictedPods || !owner || owner.kind === 'DaemonSet' || owner.kind === 'Node' || isTerminal(pod)) return;
    let target: Node | undefined;
    for (const n of this.nodeMap.values()) {
      if (n.metadata.name !== pod.spec?.nodeName && !n.spec?.unschedulable) {
        target = n;
        break;
      }
    }
    const { uid: _uid, resourceVersion: _rv, creationTimestamp: _ct, deletionTimestamp: _dt, deletionGracePeriodSeconds: _dg, ...meta } =
      structuredClone(pod.metadata);
    const prefix = meta.generateName ?? `${pod.metadata.name}-`;
    this.addPod({
      metadata: { ...meta, name: `${prefix}${this.nextSuffix()}` },
      spec: { ...structuredClone(pod.spec), nodeName: target?.metadata.name },
      status: target ? { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } : { phase: 'Pending' },
    });
  }
}

/** The node a field selector names with `spec.nodeName=<node>`, so a list can use the index. */
function nodeNameOf(selector: string | null): string | undefined {
  const m = /(?:^|,)\s*spec\.nodeName\s*==?\s*([^,\s]+)\s*(?:,|$)/.exec(selector ?? '');
  return m?.[1];
}
