import type { Registry } from 'prom-client';
import { EngineMetrics } from './flow/engine-metrics.js';
import { ReceiverMetrics } from './receiver/receiver-metrics.js';
import { SpotPriceMetrics } from './sources/spot-price/spot-price-metrics.js';
import { SqsMetrics } from './sources/sqs/sqs-metrics.js';
import { StoreMetrics } from './state/store-metrics.js';
import { TlsMetrics } from './tls-metrics.js';

/** Every metric core exports, on one registry (never the global one): the receiver's, the engine's, the SQS source's, the spot-price source's, the shared run-state store's and the TLS certificates'. */
export class CoreMetrics {
  readonly receiver: ReceiverMetrics;
  readonly engine: EngineMetrics;
  readonly sqs: SqsMetrics;
  readonly spotPrice: SpotPriceMetrics;
  readonly store: StoreMetrics;
  readonly tls: TlsMetrics;

  constructor(readonly registry: Registry) {
    this.receiver = new ReceiverMetrics(registry);
    this.engine = new EngineMetrics(registry);
    this.sqs = new SqsMetrics(registry);
    this.spotPrice = new SpotPriceMetrics(registry);
    this.store = new StoreMetrics(registry);
    this.tls = new TlsMetrics(registry);
  }
}
