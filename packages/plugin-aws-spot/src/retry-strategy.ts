import type { EC2ClientConfig } from '@aws-sdk/client-ec2';

/** The SDK's token-based retry strategy interface, as the client config accepts it. */
type SdkRetryStrategy = Extract<NonNullable<EC2ClientConfig['retryStrategy']>, { refreshRetryTokenForRetry: unknown }>;
type RetryToken = Awaited<ReturnType<SdkRetryStrategy['acquireInitialRetryToken']>>;
type RetryErrorInfo = Parameters<SdkRetryStrategy['refreshRetryTokenForRetry']>[1];

/** How every AWS call is retried by the SDK; every field has a default. */
export interface RetryOptions {
  /** Attempts per AWS call, the first included. Default 4. */
  maxAttempts?: number;
  /** Backoff before the first retry of a transient or 5xx error, doubled for each next one, with full jitter. Default 100 ms. */
  baseDelayMs?: number;
  /**
   * Backoff before the first retry of a throttled call (the same growth and
   * jitter): waiting longer after AWS said "slow down" is what keeps a wave of
   * throttled calls from coming back at once. Default 500 ms, the SDK's own.
   */
  throttlingBaseDelayMs?: number;
  /**
   * Longest backoff. Default 2 000 ms: the replacement must be under way inside
   * a two-minute notice, and core retries the whole call after this.
   */
  maxDelayMs?: number;
  /**
   * Retry budget shared by every call of one client, as the SDK's standard
   * mode keeps it: a retry costs 5 tokens (10 after a timeout), a success
   * without retries gives one back. When it runs dry calls fail at once
   * instead of retrying, so an outage or a wave of throttling cannot multiply
   * the calls sent. Default 500.
   */
  retryQuota?: number;
  /** Random source in [0, 1) for the jitter. Default `Math.random`. */
  random?: () => number;
}

const RETRY_COST = 5;
const TIMEOUT_RETRY_COST = 10;

/**
 * A retry strategy for one SDK client: throttling, transient and 5xx errors
 * are retried with capped exponential backoff and full jitter, from a longer
 * base after throttling, while the client's retry quota lasts; client errors
 * are not retried. The SDK's own default waits up to 20 s, too long for a spot
 * notice and for tests; this one is bounded by {@link RetryOptions}.
 */
export function retryStrategy(options: RetryOptions = {}): SdkRetryStrategy {
  const maxAttempts = options.maxAttempts ?? 4;
  const baseDelayMs = options.baseDelayMs ?? 100;
  const throttlingBaseDelayMs = options.throttlingBaseDelayMs ?? 500;
  const maxDelayMs = options.maxDelayMs ?? 2_000;
  const capacity = options.retryQuota ?? 500;
  const random = options.random ?? Math.random;
  let quota = capacity;
  const token = (retryCount: number, delay: number, cost: number): RetryToken & { cost: number } => ({
    getRetryCount: () => retryCount,
    getRetryDelay: () => delay,
    cost,
  });
  const costOf = (info: RetryErrorInfo): number => (info.errorType === 'TRANSIENT' && /timeout/i.test(info.error?.name ?? '') ? TIMEOUT_RETRY_COST : RETRY_COST);
  return {
    acquireInitialRetryToken: async () => token(0, 0, 0),
    refreshRetryTokenForRetry: async (previous, info) => {
      const retryCount = previous.getRetryCount() + 1;
      const cost = costOf(info);
      // Throwing tells the SDK to give up and surface the call's own error.
      if (info.errorType === 'CLIENT_ERROR' || retryCount >= maxAttempts || quota < cost) throw new Error('no retry');
      quota -= cost;
      const base = info.errorType === 'THROTTLING' ? throttlingBaseDelayMs : baseDelayMs;
      // The SDK waits this long (abortably) before the next attempt.
      return token(retryCount, Math.round(random() * Math.min(maxDelayMs, base * 2 ** (retryCount - 1))), cost);
    },
    recordSuccess: (last) => {
      const spent = (last as RetryToken & { cost?: number }).cost ?? 0;
      // A retry that worked gives back what it cost; a first try gives one token.
      quota = Math.min(capacity, quota + (spent > 0 ? spent : 1));
    },
  };
}
