import { createHash } from 'node:crypto';
import { Code, PluginError } from '@hollowtrees/grpcplugin';
import { ApiException, type V1Lease } from '@kubernetes/client-node';
import { annotationObject } from './annotation-json.js';
import type { KubeApi } from './kube-api.js';
import type { NodeRetry } from './node-drain.js';
import { withRetries } from './retry.js';

/** The Lease annotation that holds a pool's marker: `{"pool": key, "resolvedAt": ISO 8601}`. */
export const POOL_RESOLVED_ANNOTATION = 'hollowtrees.io/pool-resolved';

/** The marker Leases' labels: not core's run-state Leases' (`managed-by=hollowtrees`), which core's sweep deletes. */
const MARKER_LABELS = { 'app.kubernetes.io/managed-by': 'hollowtrees-k8s-drain', 'hollowtrees.io/role': 'pool-resolution' };

/** The Lease name for a pool's key: a pool key (a selector, `zone/type`) is no object name, so a hash of it is. */
export function markerLeaseName(pool: string): string {
  return `hollowtrees-pool-${createHash('sha256').update(pool).digest('hex').slice(0, 32)}`;
}

/**
 * A pool's resolution marker: a `coordination.k8s.io/v1` Lease per pool in one namespace, recording the time of the
 * latest resolution of its surges. Every plugin process reads it, and it outlives each of them: a resolution writes it
 * before it uncordons; a surge (core's retry after a restart, say) reads it before it drains, and a drain reads it
 * again once its cordons have landed, so a cordon that came after another process's resolution is undone.
 */
export class PoolResolutionMarker {
  /** `dryRun`: read, never written (a dry run changes nothing in the cluster). */
  constructor(
    private readonly api: KubeApi,
    private readonly namespace: string,
    private readonly dryRun: boolean,
  ) {}

  /** Epoch milliseconds of the pool's latest recorded resolution, or undefined when none is (or the Lease is not one this plugin wrote). */
  async resolvedAt(pool: string, retry: NodeRetry): Promise<number | undefined> {
    const lease = await this.read(pool, retry);
    return lease === undefined ? undefined : recordedResolution(lease, pool);
  }

  /**
   * Records that the pool's surges up to `resolvedAt` are over, unless a later resolution is recorded already.
   * Guarded by the Lease's resourceVersion: a write that lost a race (409) is tried again from a fresh read.
   */
  async record(pool: string, resolvedAt: number, retry: NodeRetry): Promise<void> {
    if (this.dryRun) return;
    const name = markerLeaseName(pool);
    const annotations = { [POOL_RESOLVED_ANNOTATION]: JSON.stringify({ pool, resolvedAt: new Date(resolvedAt).toISOString() }) };
    await this.explained(withRetries(
      async () => {
        const current = await this.readOnce(name);
        if (current === undefined) {
          const lease: V1Lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: this.namespace, labels: MARKER_LABELS, annotations } };
          return this.api.createLease(this.namespace, lease);
        }
        if ((recordedResolution(current, pool) ?? -Infinity) >= resolvedAt) return;
        const metadata = { ...current.metadata, name, annotations: { ...current.metadata?.annotations, ...annotations } };
        return this.api.replaceLease(this.namespace, name, { ...current, metadata });
      },
      { ...retry, doing: `recording the resolution of pool ${pool} (Lease ${this.namespace}/${name})` },
    ));
  }

  private read(pool: string, retry: NodeRetry): Promise<V1Lease | undefined> {
    const name = markerLeaseName(pool);
    return this.explained(withRetries(() => this.readOnce(name), { ...retry, doing: `reading the resolution of pool ${pool} (Lease ${this.namespace}/${name})` }));
  }

  /** `call`, whose refusal (403: an upgrade that kept the old RBAC, say) also names the Role pool mode needs. */
  private async explained<T>(call: Promise<T>): Promise<T> {
    try {
      return await call;
    } catch (err) {
      if (!(err instanceof PluginError && err.code === Code.PermissionDenied)) throw err;
      const needs = `pool mode needs get, create and update on coordination.k8s.io leases in namespace ${this.namespace} (the Role hollowtrees-k8s-drain-pools, deploy/kubernetes/base/k8s-drain-rbac.yaml)`;
      throw new PluginError(Code.PermissionDenied, `${err.message}; ${needs}`, { cause: err });
    }
  }

  /** The Lease, or undefined when there is none (404). */
  private async readOnce(name: string): Promise<V1Lease | undefined> {
    try {
      return await this.api.readLease(this.namespace, name);
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
  }
}

/** The resolution time the Lease records for `pool`, or undefined: none, unreadable, or another pool's (anyone can edit an annotation). */
function recordedResolution(lease: V1Lease, pool: string): number | undefined {
  const { pool: recordedPool, resolvedAt } = annotationObject(lease.metadata, POOL_RESOLVED_ANNOTATION) ?? {};
  const at = recordedPool === pool && typeof resolvedAt === 'string' ? Date.parse(resolvedAt) : NaN;
  return Number.isNaN(at) ? undefined : at;
}

