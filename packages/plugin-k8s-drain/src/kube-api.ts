import {
  CoordinationV1Api,
  CoreV1Api,
  createConfiguration,
  PatchStrategy,
  ServerConfiguration,
  Watch,
  type CoreV1Event,
  type KubeConfig,
  type RequestContext,
  type ResponseContext,
  type V1Lease,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';
import { CallGate, readEveryPage, SharedAgents } from '@hollowtrees/grpcplugin';
import { isExpiredToken } from './api-errors.js';
import { kubeWriter, noAnswerWithin } from './kube-request.js';
import type { ListedPage, WatchEvent } from './watched-list.js';

/** What a Kubernetes call is for, most urgent first: a node still taking pods is the worst case, then evictions and listings, Kubernetes Events last. */
const CALL_PRIORITIES = ['cordon', 'drain', 'event'] as const;
type CallPriority = (typeof CALL_PRIORITIES)[number];

/** The collections a drain's caches watch. */
export type WatchedCollection = 'pods' | 'nodes';

/**
 * The Kubernetes calls a drain makes, and nothing else, so the RBAC in
 * The ClusterRole (deploy/kubernetes/base/k8s-drain-rbac.yaml) stays minimal: nodes get/list/watch/patch, pods list/watch,
 * pods/eviction create, events create; and its Role there, in the pool namespace only: leases get/create/update.
 */
export interface KubeApi {
  readNode(name: string): Promise<V1Node>;
  /** All nodes, every page; only those `labelSelector` selects when given (the API server's selector grammar). */
  listNodes(labelSelector?: string): Promise<V1Node[]>;
  /** Applies a JSON merge patch (RFC 7386) to the node; not sent once `signal` has aborted. */
  mergePatchNode(name: string, patch: object, signal?: AbortSignal): Promise<void>;
  /** All pods bound to the node, every page. */
  listPodsOnNode(nodeName: string): Promise<V1Pod[]>;
  /** One page of every pod in the cluster. */
  listPodPage(continueToken: string | undefined): Promise<ListedPage<V1Pod>>;
  /** One page of every node. */
  listNodePage(continueToken: string | undefined): Promise<ListedPage<V1Node>>;
  /**
   * Follows the changes of a collection after `resourceVersion` until the
   * server ends the watch or `stop` is called; `done` is told once, with the error if any.
   */
  watch<T extends V1Pod | V1Node>(
    collection: WatchedCollection,
    resourceVersion: string,
    onEvent: (event: WatchEvent<T>) => void,
    done: (err?: unknown) => void,
  ): Promise<{ stop(): void }>;
  /** Creates a `policy/v1` Eviction; `gracePeriodSeconds` undefined keeps the pod's own. */
  evictPod(namespace: string, name: string, gracePeriodSeconds: number | undefined, options?: EvictOptions): Promise<void>;
  createEvent(namespace: string, event: CoreV1Event): Promise<void>;
  /** Reads a `coordination.k8s.io/v1` Lease (a pool's resolution marker). */
  readLease(namespace: string, name: string): Promise<V1Lease>;
  /** Creates a Lease: 409 AlreadyExists when another process created it first. */
  createLease(namespace: string, lease: V1Lease): Promise<void>;
  /** Replaces a Lease from the `metadata.resourceVersion` it carries: 409 Conflict when another write came between. */
  replaceLease(namespace: string, name: string, lease: V1Lease): Promise<void>;
  /** Closes the connections it keeps. */
  close(): void;
}

/** What else an eviction says. */
export interface EvictOptions {
  /** A precondition: a pod deleted and recreated under the name since is not evicted (409 Conflict). */
  uid?: string | undefined;
  /** Not sent once this has aborted (while it waits for a free call slot, say). */
  signal?: AbortSignal | undefined;
}

/** How {@link createKubeApi} talks to the API server. */
export interface KubeApiOptions {
  /** Calls in flight at once, across every drain; also the connections kept. Default 64. */
  maxInFlight?: number;
  /**
   * Milliseconds a read (a GET, a list page; not a watch) may go without its whole answer before it
   * is given up as ETIMEDOUT, which a drain maps to UNAVAILABLE and tries again (writes: 30 s).
   * Default 60 000: the API server's own `--request-timeout`, past which it answers 504 itself, so a
   * read it still serves (a large page from a loaded server) is never cut short.
   */
  readTimeoutMs?: number;
}

/**
 * A `promiseMiddleware` entry that aborts each call of the generated client (the reads: a GET, a
 * list page) `timeoutMs` after it starts, as {@link kubeWriter} gives up a write: a connection
 * that stopped answering would otherwise hold its call slot, and a cache's list, until the kernel
 * gives up on it (some 15 minutes).
 */
function readTimeout(timeoutMs: number): { pre(context: RequestContext): Promise<RequestContext>; post(response: ResponseContext): Promise<ResponseContext> } {
  return {
    pre: async (context) => {
      context.setSignal(AbortSignal.timeout(timeoutMs));
      return context;
    },
    post: async (response) => response,
  };
}

/** Runs a read of the generated client; one the {@link readTimeout} cut short fails as the writes do, ETIMEDOUT. */
async function timed<T>(read: () => Promise<T>, timeoutMs: number): Promise<T> {
  try {
    return await read();
  } catch (err) {
    // node-fetch's AbortError: only the timeout aborts a read.
    throw err instanceof Error && err.name === 'AbortError' ? noAnswerWithin(timeoutMs) : err;
  }
}

// Large clusters list in pages, so one answer never holds every node or pod.
const PAGE_SIZE = 500;

/**
 * Every item of a paged list, read by {@link readEveryPage}: read again from the first page when a
 * continue token expired (410 Gone), and failed as UNAVAILABLE, naming the list as `name`, when it would never end.
 */
async function allPages<T>(name: string, page: (continueToken: string | undefined) => Promise<{ items: T[]; metadata?: { _continue?: string } }>): Promise<T[]> {
  const items: T[] = [];
  await readEveryPage({
    name,
    tokenName: 'continue token',
    read: page,
    nextToken: (list) => list.metadata?._continue,
    take: (list) => void items.push(...list.items),
    expiry: { isExpired: isExpiredToken, forget: () => void items.splice(0) },
  });
  return items;
}

/** A list answer as a {@link ListedPage}. */
function page<T>(list: { items: T[]; metadata?: { resourceVersion?: string; _continue?: string } }): ListedPage<T> {
  return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '', continueToken: list.metadata?._continue || undefined };
}

/**
 * A {@link KubeApi} over `@kubernetes/client-node`'s `CoreV1Api` for the given
 * config. Every call goes through one {@link CallGate} (cordons first) and one
 * set of keep-alive connections ({@link SharedAgents}, applied by a request
 * middleware after the kubeconfig's authentication), so a wave of drains
 * reuses a bounded number of connections instead of opening one per call.
 * Cordons, evictions and Events, a wave's thousands of writes, skip the
 * generated client ({@link kubeWriter}); reads, lists and watches keep its typed models.
 */
export function createKubeApi(kubeConfig: KubeConfig, options: KubeApiOptions = {}): KubeApi {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const gate = new CallGate(options.maxInFlight ?? 64, CALL_PRIORITIES);
  const timeoutMs = options.readTimeoutMs ?? 60_000;
  // A timer past 2^31-1 ms fires at once: every read would fail.
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 2 ** 31 - 1) {
    throw new RangeError(`createKubeApi: readTimeoutMs must be a whole number of milliseconds from 1 to 2147483647, got ${timeoutMs}`);
  }
  const agents = new SharedAgents({ maxSockets: gate.limit });
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kubeConfig },
    promiseMiddleware: [agents.middleware(), readTimeout(timeoutMs)],
  });
  const core = new CoreV1Api(configuration);
  const coordination = new CoordinationV1Api(configuration);
  const read = <T>(priority: CallPriority, call: () => Promise<T>): Promise<T> => gate.run(priority, () => timed(call, timeoutMs));
  const write = kubeWriter(kubeConfig, agents);
  const watch = new Watch(kubeConfig);
  const path = encodeURIComponent;
  return {
    readNode: (name) => read('cordon', () => core.readNode({ name })),
    listNodes: (labelSelector) =>
      allPages(labelSelector ? `listing the nodes ${labelSelector} selects` : 'listing the nodes', (token) => read('cordon', () => core.listNode({ labelSelector, limit: PAGE_SIZE, _continue: token }))),
    mergePatchNode: (name, body, signal) => gate.run('cordon', () => write('PATCH', `/api/v1/nodes/${path(name)}`, body, PatchStrategy.MergePatch), signal),
    listPodsOnNode: (nodeName) =>
      allPages(`listing the pods of node "${nodeName}"`, (token) =>
        read('drain', () => core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${nodeName}`, limit: PAGE_SIZE, _continue: token })),
      ),
    listPodPage: async (token) => page(await read('drain', () => core.listPodForAllNamespaces({ limit: PAGE_SIZE, _continue: token }))),
    listNodePage: async (token) => page(await read('cordon', () => core.listNode({ limit: PAGE_SIZE, _continue: token }))),
    watch: async (collection, resourceVersion, onEvent, done) => {
      // One long-lived connection per collection, outside the gate: it would hold a slot for minutes.
      const controller = await watch.watch(
        `/api/v1/${collection}`,
        { resourceVersion, allowWatchBookmarks: true },
        (type: string, object: unknown) => onEvent({ type, object } as Parameters<typeof onEvent>[0]),
        done,
      );
      return { stop: () => controller.abort() };
    },
    evictPod: (namespace, name, gracePeriodSeconds, { uid, signal } = {}) => {
      const deleteOptions = { ...(gracePeriodSeconds !== undefined && { gracePeriodSeconds }), ...(uid && { preconditions: { uid } }) };
      return gate.run(
        'drain',
        () =>
          write('POST', `/api/v1/namespaces/${path(namespace)}/pods/${path(name)}/eviction`, {
            apiVersion: 'policy/v1',
            kind: 'Eviction',
            metadata: { name, namespace },
            ...(Object.keys(deleteOptions).length > 0 && { deleteOptions }),
          }),
        signal,
      );
    },
    createEvent: (namespace, body) => gate.run('event', () => write('POST', `/api/v1/namespaces/${path(namespace)}/events`, body)),
    // A resolution's marker guards cordons: it goes with them, ahead of evictions.
    readLease: (namespace, name) => read('cordon', () => coordination.readNamespacedLease({ namespace, name })),
    createLease: (namespace, body) => gate.run('cordon', () => write('POST', `/apis/coordination.k8s.io/v1/namespaces/${path(namespace)}/leases`, body)),
    replaceLease: (namespace, name, body) => gate.run('cordon', () => write('PUT', `/apis/coordination.k8s.io/v1/namespaces/${path(namespace)}/leases/${path(name)}`, body)),
    close: () => agents.destroy(),
  };
}
