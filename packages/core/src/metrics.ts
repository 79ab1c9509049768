import type { Registry } from 'prom-client';
import { EngineMetrics } from './flow/engine-metrics.js';
import { ReceiverMetrics } from './receiver/receiver-metrics.js';

/** Every metric core exports, on one registry (never the global one): the receiver's and the engine's. */
export class CoreMetrics {
  readonly receiver: ReceiverMetrics;
  readonly engine: EngineMetrics;

  constructor(readonly registry: Registry) {
    this.receiver = new ReceiverMetrics(registry);
    this.engine = new EngineMetrics(registry);
  }
}
