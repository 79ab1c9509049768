import { DescribeSpotPriceHistoryCommand, type _InstanceType, type EC2Client } from '@aws-sdk/client-ec2';
import { readEveryPage } from '@hollowtrees/grpcplugin/without-grpc';
import type { PriceSample } from './price-crossings.js';
import { poolKey, type SpotPool } from './spot-pools.js';

/** What one read of the history asks for. */
export interface HistoryQuery {
  readonly pools: readonly SpotPool[];
  readonly productDescription: string;
  /** The window, in ms since the epoch; EC2 adds each pool's price in effect at `from`. */
  readonly from: number;
  readonly to: number;
}

/**
 * Reads the Spot price history of `pools` (every page, 1,000 samples each):
 * one call for all of them, by instance type and zone, keeping the samples of
 * the pools asked for. Returns each pool's samples oldest first, by {@link poolKey}.
 */
export async function readPriceHistory(client: EC2Client, query: HistoryQuery, signal: AbortSignal): Promise<Map<string, PriceSample[]>> {
  const history = new Map<string, PriceSample[]>(query.pools.map((pool) => [poolKey(pool), []]));
  const input = {
    InstanceTypes: [...new Set(query.pools.map((p) => p.instanceType))] as _InstanceType[],
    Filters: [{ Name: 'availability-zone', Values: [...new Set(query.pools.map((p) => p.availabilityZone))] }],
    ProductDescriptions: [query.productDescription],
    StartTime: new Date(query.from),
    EndTime: new Date(query.to),
    MaxResults: 1_000,
  };
  await readEveryPage({
    name: 'DescribeSpotPriceHistory',
    read: (NextToken) => client.send(new DescribeSpotPriceHistoryCommand({ ...input, ...(NextToken ? { NextToken } : {}) }), { abortSignal: signal }),
    nextToken: (page) => page.NextToken,
    take: (page) => {
      for (const item of page.SpotPriceHistory ?? []) {
        const samples = item.InstanceType && item.AvailabilityZone ? history.get(poolKey({ instanceType: item.InstanceType, availabilityZone: item.AvailabilityZone })) : undefined;
        const price = Number(item.SpotPrice);
        if (!samples || !item.Timestamp || !Number.isFinite(price)) continue;
        samples.push({ price, at: item.Timestamp.getTime() });
      }
    },
  });
  // EC2 answers newest first; a stable sort keeps its order for samples of one second reversed, as they came.
  for (const samples of history.values()) samples.reverse().sort((a, b) => a.at - b.at);
  return history;
}
