import type { Backoff, PluginLogger as Logger } from '@hollowtrees/grpcplugin';
import type { V1Pod } from '@kubernetes/client-node';
import type { KubeApi, PodWatchEvent } from './kube-api.js';
import { MIRROR_ANNOTATION } from './pod-filter.js';

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

/** How long the cache waits before listing or watching again after a failure. */
export interface PodCacheOptions {
  readonly logger: Logger;
  readonly backoff: Backoff;
}

/**
 * Every pod of the cluster, by node, kept current by one watch: the pod
 * listing of a whole wave (one paged list when the cache starts, then one
 * stream of changes) instead of a list per node and a poll per node while its
 * pods terminate. A drain reads its node's pods from here and waits for their
 * DELETED events. A watch that ends is resumed from the last resourceVersion;
 * one answered 410 Gone (too old) lists again. Like any informer it can be a
 * moment behind the API server.
 */
export class PodCache {
  private readonly byNode = new Map<string, Map<string, V1Pod>>();
  private readonly nodeOf = new Map<string, string>();
  private readonly goneWaiters = new Map<string, Set<() => void>>();
  private resourceVersion = '';
  private synced = false;
  private readonly syncWaiters = new Set<() => void>();
  private stopped = false;
  private watching: { stop(): void } | undefined;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;

  constructor(
    private readonly api: KubeApi,
    private readonly options: PodCacheOptions,
  ) {}

  /** Starts listing and watching, once; later calls do nothing. */
  start(): void {
    this.loop ??= this.run();
  }

  /** Whether the first list has landed. */
  get isSynced(): boolean {
    return this.synced;
  }

  /** Resolves true once the first list has landed, false if it has not within `waitMs`. */
  whenSynced(waitMs: number): Promise<boolean> {
    this.start();
    if (this.synced) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.syncWaiters.delete(done);
        resolve(this.synced);
      };
      const timer = setTimeout(done, waitMs);
      this.syncWaiters.add(done);
    });
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

  /** Stops watching (a watch still connecting is stopped as soon as it is connected). */
  stop(): void {
    this.stopped = true;
    this.watching?.stop();
    this.wakeUp?.();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (!this.resourceVersion) await this.relist();
        await this.watchOnce();
        failures = 0;
      } catch (err) {
        if (this.stopped) break;
        if ((err as { statusCode?: number }).statusCode === 410) this.resourceVersion = '';
        failures++;
        this.options.logger.warn('the pod cache lost its watch or list: trying again (drains meanwhile use what it has, or list their node)', {
          error: err instanceof Error ? err.message : String(err),
          attempt: failures,
        });
        await new Promise<void>((resolve) => {
          this.wakeUp = resolve;
          setTimeout(resolve, this.options.backoff(failures)).unref();
        });
      }
    }
  }

  /** Lists every pod, page by page, and replaces the cache with what it found. */
  private async relist(): Promise<void> {
    const pods: V1Pod[] = [];
    let token: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.api.listPodPage(token);
      pods.push(...page.items.map(trimmed));
      // Every page of one list is a snapshot at the first page's version.
      resourceVersion ||= page.resourceVersion;
      token = page.continueToken;
    } while (token);
    const before = new Set(this.nodeOf.keys());
    this.byNode.clear();
    this.nodeOf.clear();
    for (const pod of pods) this.put(pod);
    for (const uid of before) if (!this.nodeOf.has(uid)) this.gone(uid);
    this.resourceVersion = resourceVersion;
    if (!this.synced) {
      this.synced = true;
      for (const waiter of [...this.syncWaiters]) waiter();
    }
  }

  private watchOnce(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.api
        .watchPods(this.resourceVersion, (event) => this.apply(event), (err) => (err ? reject(err) : resolve()))
        .then((handle) => {
          this.watching = handle;
          if (this.stopped) handle.stop();
        }, reject);
    });
  }

  private apply(event: PodWatchEvent): void {
    if (event.type === 'ERROR') {
      // 410 Gone: the version is too old to resume from; the server ends the watch and the loop lists again.
      if (event.object.code === 410) this.resourceVersion = '';
      return;
    }
    const pod = event.object;
    if (event.type === 'DELETED') this.remove(pod);
    else if (event.type !== 'BOOKMARK') this.put(trimmed(pod));
    this.resourceVersion = pod.metadata?.resourceVersion ?? this.resourceVersion;
  }

  private put(pod: V1Pod): void {
    const uid = pod.metadata?.uid;
    const node = pod.spec?.nodeName;
    if (!uid) return;
    const previous = this.nodeOf.get(uid);
    if (previous !== undefined && previous !== node) this.byNode.get(previous)?.delete(uid);
    if (!node) {
      this.nodeOf.delete(uid);
      return;
    }
    this.nodeOf.set(uid, node);
    const onNode = this.byNode.get(node) ?? new Map<string, V1Pod>();
    onNode.set(uid, pod);
    this.byNode.set(node, onNode);
  }

  private remove(pod: V1Pod): void {
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
