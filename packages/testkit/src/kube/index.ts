/**
 * A kube-apiserver stand-in: nodes get/list/watch/patch, pods list/watch/get/delete,
 * the `policy/v1` eviction subresource with PodDisruptionBudget semantics,
 * events create, `coordination.k8s.io/v1` Leases with optimistic concurrency, and `Status` error bodies as the real API server sends them;
 * optionally slowed by a per-request latency.
 */
export {
  startKubeApiServer,
  type FaultOptions,
  type KubeFault,
  type KubeApiServer,
  type KubeApiServerOptions,
  type KubeConfigOptions,
  type RequestRecord,
} from './server.js';
export { LeaseTable } from './leases.js';
export { KubeCluster, type EvictionRecord, type PodRemovalRecord, type KubeClusterOptions, type ListQuery, type ObjectList } from './cluster.js';
export type {
  Event as KubeEvent,
  Lease as KubeLease,
  Node as KubeNode,
  ObjectMeta as KubeObjectMeta,
  OwnerReference as KubeOwnerReference,
  Pod as KubePod,
  PodDisruptionBudget as KubePodDisruptionBudget,
  PodDisruptionBudgetStatus as KubePodDisruptionBudgetStatus,
  Status as KubeStatus,
  Taint as KubeTaint,
  Volume as KubeVolume,
  WatchEvent as KubeWatchEvent,
} from './types.js';
