import type { Clock } from '@hollowtrees/grpcplugin';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { SpotPriceMetrics } from './spot-price/spot-price-metrics.js';
import type { SqsMetrics } from './sqs/sqs-metrics.js';
import type { EventSource } from './event-source.js';

/**
 * The clocks the sources read: `runState`, the run state's (a queue's receipt times go with its runs');
 * `wall`, the system's (the price source compares it with the times of AWS's price samples; its events' receipt is on `runState`).
 */
export interface SourceClocks {
  runState: Clock;
  wall: Clock;
}

/**
 * The queue and price sources `sources` configures. Each kind's module, and with it its AWS SDK
 * client, is loaded only when configured: the EC2 client alone adds about 70 MiB to an idle
 * Hollowtrees that watches no price.
 */
export async function configuredSources(sources: Config['sources'], metrics: { sqs: SqsMetrics; spotPrice: SpotPriceMetrics }, logger: Logger, clocks: SourceClocks): Promise<EventSource[]> {
  const configured: EventSource[] = [];
  if (sources.sqs.length > 0) {
    const { SqsQueueSource } = await import('./sqs/sqs-queue-source.js');
    configured.push(...sources.sqs.map((queue, i) => new SqsQueueSource(queue, i, metrics.sqs, logger, clocks.runState)));
  }
  if (sources.spotPrice.length > 0) {
    const { SpotPriceSource } = await import('./spot-price/spot-price-source.js');
    configured.push(...sources.spotPrice.map((entry, i) => new SpotPriceSource(entry, i, metrics.spotPrice, logger, clocks.wall, clocks.runState)));
  }
  return configured;
}
