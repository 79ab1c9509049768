/** An owner reference, as on `metadata.ownerReferences`. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
}

/** The subset of `ObjectMeta` the stand-in reads and writes; other fields are kept as given. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  generateName?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  [field: string]: unknown;
}

/** A node taint. */
export interface Taint {
  key: string;
  value?: string;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  timeAdded?: string;
}

/** A `v1` Node as the stand-in stores it. */
export interface Node {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: { providerID?: string; unschedulable?: boolean; taints?: Taint[]; [field: string]: unknown };
  status?: Record<string, unknown>;
}

/** A pod volume; only `emptyDir` matters to a drain. */
export interface Volume {
  name: string;
  emptyDir?: Record<string, unknown>;
  [source: string]: unknown;
}

/** A `v1` Pod as the stand-in stores it. */
export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: { nodeName?: string; volumes?: Volume[]; terminationGracePeriodSeconds?: number; [field: string]: unknown };
  status?: {
    phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
    conditions?: Array<{ type: string; status: 'True' | 'False' | 'Unknown'; [field: string]: unknown }>;
    [field: string]: unknown;
  };
}

/**
 * A `policy/v1` PodDisruptionBudget, reduced to what eviction needs: a
 * `matchLabels` selector and a `minAvailable` or `maxUnavailable`, each an
 * integer or a percentage such as `"90%"` (of the pods the controller expects,
 * rounded up, as the disruption controller does).
 */
export interface PodDisruptionBudget {
  metadata: ObjectMeta;
  spec: {
    selector: { matchLabels: Record<string, string> };
    minAvailable?: number | string;
    maxUnavailable?: number | string;
  };
}

/** The status the stand-in computes for a PodDisruptionBudget, as the disruption controller would. */
export interface PodDisruptionBudgetStatus {
  /** Matching pods that are scheduled, running, ready and not terminating. */
  currentHealthy: number;
  desiredHealthy: number;
  disruptionsAllowed: number;
  expectedPods: number;
}

/** A `v1` Event (core group). */
export interface Event {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  involvedObject: { kind?: string; name?: string; namespace?: string; uid?: string; apiVersion?: string };
  reason?: string;
  message?: string;
  type?: string;
  [field: string]: unknown;
}

/** One event of a watch, as the API server streams it (one JSON object a line). */
export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'ERROR';
  object: T;
}

/** A `meta/v1` Status, the body of every error answer (and of a successful eviction). */
export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    // A cause's type is its `reason` on the wire (Go's `StatusCause.Type`, JSON name `reason`).
    causes?: Array<{ reason?: string; message?: string; field?: string }>;
    retryAfterSeconds?: number;
  };
  code: number;
}

/** A `coordination.k8s.io/v1` Lease. */
export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    /** RFC 3339 with microseconds (`MicroTime`). */
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
    [field: string]: unknown;
  };
}
