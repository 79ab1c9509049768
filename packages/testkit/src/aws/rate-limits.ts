import { wallClockMs } from '../listen.js';
import { throttlingError, type AwsApiError, type QueryService } from './aws-api-error.js';

/** A token bucket: up to `capacity` tokens, refilled at `refillPerSecond`; each call takes one. */
export interface TokenBucketLimit {
  readonly capacity: number;
  readonly refillPerSecond: number;
}

/** The bucket a call draws from: calls naming the same `bucket` share its tokens. */
export interface RateLimitRule {
  readonly bucket: string;
  readonly limit: TokenBucketLimit;
}

/** Picks the bucket of a call; undefined leaves the call unlimited. */
export type RateLimitPolicy = (service: QueryService, action: string) => RateLimitRule | undefined;

/** EC2's published request-rate categories (per account and Region, one bucket per action). */
const EC2_NON_MUTATING: TokenBucketLimit = { capacity: 100, refillPerSecond: 20 };
const EC2_MUTATING: TokenBucketLimit = { capacity: 50, refillPerSecond: 5 };
/**
 * Auto Scaling documents one bucket shared by all its actions but publishes no
 * size: this is an assumption, in the range users report being throttled at.
 */
const AUTO_SCALING_SHARED: TokenBucketLimit = { capacity: 40, refillPerSecond: 10 };

/**
 * Rate limits shaped like AWS's: EC2 gives every action its own bucket
 * (`Describe*` 100 tokens refilled at 20/s, the mutating actions 50 at 5/s, as in
 * the EC2 API reference's "Request throttling"); Auto Scaling has one bucket for
 * all its actions (40 at 10/s, an assumption: AWS publishes no number).
 */
export const awsLikeRateLimits: RateLimitPolicy = (service, action) =>
  service === 'ec2'
    ? { bucket: `ec2:${action}`, limit: action.startsWith('Describe') ? EC2_NON_MUTATING : EC2_MUTATING }
    : { bucket: 'autoscaling', limit: AUTO_SCALING_SHARED };

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/**
 * Throttles calls the way AWS does: a call that finds its bucket empty is
 * answered with the service's throttling error instead of being served. The
 * bucket refills continuously (AWS adds the second's tokens at once; the
 * difference is below what a drill can see).
 */
export class AwsRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly throttledByBucket = new Map<string, number>();

  constructor(
    private readonly policy: RateLimitPolicy,
    /** Milliseconds clock. Default: the wall clock. */
    private readonly now: () => number = wallClockMs,
  ) {}

  /** Takes a token for the call; returns the throttling error to answer when there is none. */
  take(service: QueryService, action: string): AwsApiError | undefined {
    const rule = this.policy(service, action);
    if (!rule) return undefined;
    const now = this.now();
    const { capacity, refillPerSecond } = rule.limit;
    const bucket = this.buckets.get(rule.bucket) ?? { tokens: capacity, updatedAt: now };
    bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.updatedAt) / 1000) * refillPerSecond);
    bucket.updatedAt = now;
    this.buckets.set(rule.bucket, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return undefined;
    }
    this.throttledByBucket.set(rule.bucket, (this.throttledByBucket.get(rule.bucket) ?? 0) + 1);
    return throttlingError(service);
  }

  /** Calls throttled so far, by bucket name. */
  throttled(): Record<string, number> {
    return Object.fromEntries(this.throttledByBucket);
  }
}
