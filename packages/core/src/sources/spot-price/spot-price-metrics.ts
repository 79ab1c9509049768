import { Counter, Gauge, type Registry } from 'prom-client';
import type { ThresholdKind } from './price-crossings.js';

const THRESHOLD_KINDS: readonly ThresholdKind[] = ['absolute', 'on-demand-ratio', 'jump'];
/** What a crossing event announces: a surge, or its end. */
export type CrossingEdge = 'surge' | 'resolved';
const EDGES: readonly CrossingEdge[] = ['surge', 'resolved'];

/**
 * The spot-price source's metrics, by source (its configured name: a bounded
 * set). No label carries a pool: those come from the account, not from the configuration.
 */
export class SpotPriceMetrics {
  readonly polls: Counter<'source'>;
  readonly apiErrors: Counter<'source' | 'action'>;
  readonly crossings: Counter<'source' | 'threshold_kind' | 'edge'>;
  readonly refused: Counter<'source'>;
  readonly pools: Gauge<'source'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.polls = new Counter({ name: 'hollowtrees_spot_price_polls_total', help: 'Polls of the Spot price history that succeeded.', labelNames: ['source'], registers });
    this.apiErrors = new Counter({ name: 'hollowtrees_spot_price_api_errors_total', help: "EC2 calls that failed after the SDK's retries, by action.", labelNames: ['source', 'action'], registers });
    this.crossings = new Counter({ name: 'hollowtrees_spot_price_crossings_total', help: 'Threshold crossings announced, by threshold kind and edge (surge, resolved).', labelNames: ['source', 'threshold_kind', 'edge'], registers });
    this.refused = new Counter({ name: 'hollowtrees_spot_price_events_refused_total', help: 'Crossing events the flows could not take (no room, state not durable); announced again at the next poll.', labelNames: ['source'], registers });
    this.pools = new Gauge({ name: 'hollowtrees_spot_price_pools', help: 'Spot pools watched at the last poll.', labelNames: ['source'], registers });
  }

  /** Makes a source's series exist at zero from the start. */
  initSource(source: string): void {
    this.polls.inc({ source }, 0);
    this.refused.inc({ source }, 0);
    for (const action of ['DescribeSpotPriceHistory', 'DescribeInstances']) this.apiErrors.inc({ source, action }, 0);
    for (const kind of THRESHOLD_KINDS) for (const edge of EDGES) this.crossings.inc({ source, threshold_kind: kind, edge }, 0);
    this.pools.set({ source }, 0);
  }
}
