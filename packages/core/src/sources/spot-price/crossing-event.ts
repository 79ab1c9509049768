import { createHash } from 'node:crypto';
import type { CloudEvent } from '@hollowtrees/grpcplugin';
import type { Crossing } from './price-crossings.js';
import type { SpotPool } from './spot-pools.js';

/** The CloudEvent types of the spot-price source. */
export const SPOT_PRICE_TYPES = {
  surge: 'aws.ec2.spot.price-surge',
  resolved: 'aws.ec2.spot.price-surge.resolved',
} as const;

/** The `data` of a crossing event: labels plus the crossing's times. */
export interface PriceSurgeEventData {
  labels: Record<string, string>;
  /** When the price crossed (RFC 3339): the crossing sample's timestamp. */
  crossedAt: string;
  /** When it fell back, on a `.resolved` event. */
  resolvedAt?: string;
  [field: string]: unknown;
}

/** A crossing event: its data is always there. */
export type PriceSurgeEvent = CloudEvent<PriceSurgeEventData> & { data: PriceSurgeEventData };

/** Where the crossing happened. */
export interface CrossingPlace {
  readonly region: string;
  readonly pool: SpotPool;
  readonly productDescription: string;
}

/** Six decimals, as EC2 writes prices. */
const price = (value: number): string => value.toFixed(6);

/**
 * The event of a surge (`edge` surge) or of its end (`resolved`). The id hashes
 * the pool, the threshold (kind and level) and the crossing sample's timestamp,
 * and for an end the sample that fell back, which is all read from the price
 * history: every poll, restart and replica gives one crossing the same id, and
 * its resolution another id of its own. Two entries watching one pool at other
 * levels (or, for an end, other hysteresis) make other events, with other ids.
 */
export function crossingEvent(place: CrossingPlace, crossing: Crossing, edge: 'surge' | 'resolved'): PriceSurgeEvent {
  const crossedAt = new Date(crossing.crossedAt).toISOString();
  const resolved = edge === 'resolved';
  const resolvedAt = crossing.resolvedAt === undefined ? undefined : new Date(crossing.resolvedAt).toISOString();
  const threshold = price(crossing.threshold);
  const identity = [place.region, place.pool.availabilityZone, place.pool.instanceType, place.productDescription, crossing.kind, threshold, crossedAt, edge, ...(resolved ? [resolvedAt ?? ''] : [])];
  const hash = createHash('sha256');
  // Length-prefixed, so no value can imitate a separator.
  for (const part of identity) hash.update(`${part.length}:${part}`);
  return {
    id: hash.digest().toString('hex', 0, 16),
    source: `urn:hollowtrees:spot-price:${place.region}`,
    specversion: '1.0',
    type: resolved ? SPOT_PRICE_TYPES.resolved : SPOT_PRICE_TYPES.surge,
    time: (resolved ? resolvedAt : undefined) ?? crossedAt,
    datacontenttype: 'application/json',
    data: {
      labels: {
        region: place.region,
        availability_zone: place.pool.availabilityZone,
        instance_type: place.pool.instanceType,
        product_description: place.productDescription,
        price: price(resolved ? (crossing.resolvedPrice ?? crossing.price) : crossing.price),
        threshold,
        threshold_kind: crossing.kind,
      },
      crossedAt,
      ...(resolved && resolvedAt !== undefined ? { resolvedAt } : {}),
    },
  };
}
