import { AwsApiError } from './aws-api-error.js';
import { dryRunGuard, type QueryParams } from './query-params.js';

/** One Spot pool: an instance type in an Availability Zone, for one product (operating system). */
export interface SpotPool {
  readonly instanceType: string;
  readonly availabilityZone: string;
  /** Default `Linux/UNIX`. */
  readonly productDescription?: string;
}

/** One price change of a pool, as DescribeSpotPriceHistory reports it. */
export interface SpotPriceSample {
  readonly instanceType: string;
  readonly availabilityZone: string;
  readonly productDescription: string;
  /** US dollars per hour. */
  readonly price: number;
  readonly timestamp: Date;
  /** Insertion order: breaks ties between samples of one timestamp, so pages never skip or repeat one. */
  readonly seq: number;
}

/** A price from `at` on. */
export interface PricePoint {
  readonly price: number;
  readonly at: Date;
}

const DEFAULT_PRODUCT = 'Linux/UNIX';
/** DescribeSpotPriceHistory's page size: 5 to 1,000, 1,000 when not given. */
const MIN_RESULTS = 5;
const MAX_RESULTS = 1_000;
const FILTER_FIELDS: Readonly<Record<string, (s: SpotPriceSample) => string>> = {
  'availability-zone': (s) => s.availabilityZone,
  'instance-type': (s) => s.instanceType,
  'product-description': (s) => s.productDescription,
  'spot-price': (s) => formatPrice(s.price),
};

/** EC2 reports prices with six decimals, as a string. */
const formatPrice = (price: number): string => price.toFixed(6);

/** An EC2 filter value: `*` any run of characters, `?` one character. */
function wildcard(value: string): RegExp {
  const escaped = value.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

/** Newest first; among samples of one timestamp, the one set last first. */
type Position = Pick<SpotPriceSample, 'timestamp' | 'seq'>;
const newestFirst = (a: Position, b: Position): number => b.timestamp.getTime() - a.timestamp.getTime() || b.seq - a.seq;

/** Where the next page starts: after this sample of the same request. */
interface PageToken {
  readonly t: number;
  readonly s: number;
  readonly request: string;
}

function parseTime(params: QueryParams, name: string): number | undefined {
  const text = params.get(name);
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new AwsApiError('InvalidParameterValue', `Value (${text}) for parameter ${name} is invalid.`);
  return ms;
}

/**
 * The Spot price history of the EC2 stand-in: prices tests script per pool,
 * served by DescribeSpotPriceHistory as EC2 serves them: newest first, paged by
 * MaxResults and NextToken, filtered by InstanceType.N, ProductDescription.N,
 * AvailabilityZone and Filter.N (`availability-zone`, `instance-type`,
 * `product-description`, `spot-price`, with `*` and `?` wildcards), and for a
 * StartTime/EndTime window the samples inside it plus, per pool, the last change
 * before StartTime (the price in effect when the window opens).
 */
export class SpotPriceHistory {
  private readonly samples: SpotPriceSample[] = [];
  private seq = 0;

  /** The pool's price changes to `price` at `at` (default now). */
  set(pool: SpotPool, price: number, at: Date = new Date()): SpotPriceSample {
    if (!(price >= 0)) throw new Error(`a spot price is a non-negative number, not ${price}`);
    const sample: SpotPriceSample = {
      instanceType: pool.instanceType,
      availabilityZone: pool.availabilityZone,
      productDescription: pool.productDescription ?? DEFAULT_PRODUCT,
      price,
      timestamp: at,
      seq: this.seq++,
    };
    this.samples.push(sample);
    return sample;
  }

  /** Sets a series of price changes of one pool. */
  setSeries(pool: SpotPool, points: readonly PricePoint[]): void {
    for (const point of points) this.set(pool, point.price, point.at);
  }

  /** Every sample of the pool, oldest first. */
  of(pool: SpotPool): SpotPriceSample[] {
    const product = pool.productDescription ?? DEFAULT_PRODUCT;
    return this.samples
      .filter((s) => s.instanceType === pool.instanceType && s.availabilityZone === pool.availabilityZone && s.productDescription === product)
      .sort((a, b) => -newestFirst(a, b));
  }

  /** Serves DescribeSpotPriceHistory. */
  describe(params: QueryParams): Record<string, unknown> {
    const maxResults = params.int('MaxResults') ?? MAX_RESULTS;
    if (maxResults < MIN_RESULTS || maxResults > MAX_RESULTS) {
      throw new AwsApiError('InvalidParameterValue', `Value (${maxResults}) for parameter maxResults is invalid. Expecting a value between ${MIN_RESULTS} and ${MAX_RESULTS}.`);
    }
    const start = parseTime(params, 'StartTime');
    const end = parseTime(params, 'EndTime') ?? Date.now();
    if (start !== undefined && start > end) throw new AwsApiError('InvalidParameterValue', 'The start time must be before the end time.');
    const matches = this.matcher(params);
    dryRunGuard(params);

    const inWindow = this.samples.filter((s) => matches(s) && s.timestamp.getTime() <= end).sort(newestFirst);
    const served = start === undefined ? inWindow : withPriceAtStart(inWindow, start);
    // A token belongs to one request: the same parameters without NextToken and MaxResults.
    const request = JSON.stringify(Object.entries(params.toObject()).filter(([k]) => k !== 'NextToken' && k !== 'MaxResults').sort());
    const from = this.pageStart(served, params.get('NextToken'), request);
    const page = served.slice(from, from + maxResults);
    const last = page.at(-1);
    const more = from + page.length < served.length && last !== undefined;
    return {
      spotPriceHistorySet: {
        item: page.map((s) => ({
          availabilityZone: s.availabilityZone,
          instanceType: s.instanceType,
          productDescription: s.productDescription,
          spotPrice: formatPrice(s.price),
          timestamp: s.timestamp.toISOString(),
        })),
      },
      nextToken: more ? Buffer.from(JSON.stringify({ t: last.timestamp.getTime(), s: last.seq, request } satisfies PageToken)).toString('base64url') : '',
    };
  }

  private matcher(params: QueryParams): (s: SpotPriceSample) => boolean {
    const tests: Array<(s: SpotPriceSample) => boolean> = [];
    const types = new Set(params.list('InstanceType'));
    if (types.size > 0) tests.push((s) => types.has(s.instanceType));
    const products = new Set(params.list('ProductDescription'));
    if (products.size > 0) tests.push((s) => products.has(s.productDescription));
    const zone = params.get('AvailabilityZone');
    if (zone !== undefined) tests.push((s) => s.availabilityZone === zone);
    for (const filter of params.structs('Filter')) {
      const name = filter.require('Name');
      const field = FILTER_FIELDS[name];
      if (!field) throw new AwsApiError('InvalidParameterValue', `The filter '${name}' is invalid`);
      const values = filter.list('Value').map(wildcard);
      tests.push((s) => values.some((v) => v.test(field(s))));
    }
    return (s) => tests.every((test) => test(s));
  }

  private pageStart(served: readonly SpotPriceSample[], token: string | undefined, request: string): number {
    if (token === undefined || token === '') return 0;
    let parsed: PageToken;
    try {
      parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as PageToken;
    } catch {
      parsed = { t: NaN, s: NaN, request: '' };
    }
    if (parsed.request !== request || !Number.isFinite(parsed.t)) throw new AwsApiError('InvalidParameterValue', `The token '${token}' is invalid for this request.`);
    // The first sample that sorts after the last one served: samples set meanwhile shift no page.
    const after = served.findIndex((s) => newestFirst(s, { timestamp: new Date(parsed.t), seq: parsed.s }) > 0);
    return after === -1 ? served.length : after;
  }
}

/** The samples from `start` on, plus each pool's last change before it: the price in effect when the window opens. */
function withPriceAtStart(newestFirstSamples: readonly SpotPriceSample[], start: number): SpotPriceSample[] {
  const effective = new Set<string>();
  return newestFirstSamples.filter((s) => {
    if (s.timestamp.getTime() >= start) return true;
    const pool = `${s.instanceType}|${s.availabilityZone}|${s.productDescription}`;
    if (effective.has(pool)) return false;
    effective.add(pool);
    return true;
  });
}
