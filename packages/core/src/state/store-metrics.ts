import { Counter, Histogram, type Registry } from 'prom-client';

/** What one call to the shared run-state store ended as. */
export type StoreCallResult = 'ok' | 'conflict' | 'not_found' | 'error';

/** A call to the shared store: the Lease operation. */
export type StoreOperation = 'create' | 'read' | 'update' | 'delete' | 'list';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Metrics of the shared run-state store (kubernetes backend): calls by operation and result, and their latency. */
export class StoreMetrics {
  /** `result="conflict"` counts 409s: another replica created or changed the Lease first. */
  readonly calls: Counter<'operation' | 'result'>;
  readonly callDuration: Histogram<'operation'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.calls = new Counter({ name: 'hollowtrees_state_store_calls_total', help: 'Calls to the shared run-state store (Kubernetes Leases), by operation and result (ok, conflict: a 409, not_found, error: unreachable or refused).', labelNames: ['operation', 'result'], registers });
    this.callDuration = new Histogram({ name: 'hollowtrees_state_store_call_seconds', help: 'Latency of calls to the shared run-state store, by operation.', labelNames: ['operation'], buckets: BUCKETS, registers });
  }
}
