import type { Registry } from 'prom-client';
import { EngineMetrics } from './flow/engine-metrics.js';
import { ReceiverMetrics } from './receiver/receiver-metrics.js';
import { SqsMetrics } from './sources/sqs/sqs-metrics.js';

/** Every metric core exports, on one registry (never the global one): the receiver's, the engine's and the SQS source's. */
export class CoreMetrics {
  readonly receiver: ReceiverMetrics;
  readonly engine: EngineMetrics;
  readonly sqs: SqsMetrics;

  constructor(readonly registry: Registry) {
    this.receiver = new ReceiverMetrics(registry);
    this.engine = new EngineMetrics(registry);
    this.sqs = new SqsMetrics(registry);
  }
}
