import {
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Event,
  type KubeConfig,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';

/**
 * The Kubernetes calls a drain makes, and nothing else, so the RBAC in
 * `rbac.yaml` stays minimal: nodes get/list/patch, pods list, pods/eviction
 * create, events create.
 */
export interface KubeApi {
  readNode(name: string): Promise<V1Node>;
  /** All nodes, every page. */
  listNodes(): Promise<V1Node[]>;
  /** Applies a JSON merge patch (RFC 7386) to the node. */
  mergePatchNode(name: string, patch: object): Promise<V1Node>;
  /** All pods bound to the node, every page. */
  listPodsOnNode(nodeName: string): Promise<V1Pod[]>;
  /** Creates a `policy/v1` Eviction; `gracePeriodSeconds` undefined keeps the pod's own. */
  evictPod(namespace: string, name: string, gracePeriodSeconds: number | undefined): Promise<void>;
  createEvent(namespace: string, event: CoreV1Event): Promise<void>;
}

// Large clusters list in pages, so one answer never holds every node or pod.
const PAGE_SIZE = 500;

async function allPages<T>(page: (continueToken: string | undefined) => Promise<{ items: T[]; metadata?: { _continue?: string } }>): Promise<T[]> {
  const items: T[] = [];
  let token: string | undefined;
  do {
    const list = await page(token);
    items.push(...list.items);
    token = list.metadata?._continue || undefined;
  } while (token);
  return items;
}

/** A {@link KubeApi} over `@kubernetes/client-node`'s `CoreV1Api` for the given config. */
export function createKubeApi(kubeConfig: KubeConfig): KubeApi {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  return {
    readNode: (name) => core.readNode({ name }),
    listNodes: () => allPages((token) => core.listNode({ limit: PAGE_SIZE, _continue: token })),
    mergePatchNode: (name, body) => core.patchNode({ name, body }, mergePatch),
    listPodsOnNode: (nodeName) =>
      allPages((token) => core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${nodeName}`, limit: PAGE_SIZE, _continue: token })),
    evictPod: async (namespace, name, gracePeriodSeconds) => {
      await core.createNamespacedPodEviction({
        name,
        namespace,
        body: {
          apiVersion: 'policy/v1',
          kind: 'Eviction',
          metadata: { name, namespace },
          ...(gracePeriodSeconds === undefined ? {} : { deleteOptions: { gracePeriodSeconds } }),
        },
      });
    },
    createEvent: async (namespace, body) => {
      await core.createNamespacedEvent({ namespace, body });
    },
  };
}
