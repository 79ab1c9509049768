import type { EC2ClientConfig } from '@aws-sdk/client-ec2';

/** The SDK's token-based retry strategy interface, as the client config accepts it. */
type SdkRetryStrategy = Extract<NonNullable<EC2ClientConfig['retryStrategy']>, { refreshRetryTokenForRetry: unknown }>;
type RetryToken = Awaited<ReturnType<SdkRetryStrategy['acquireInitialRetryToken']>>;

/** How every AWS call is retried by the SDK; every field has a default. */
export interface RetryOptions {
  /** Attempts per AWS call, the first included. Default 4. */
  maxAttempts?: number;
  /** Backoff before the first retry, doubled for each next one, with full jitter. Default 100 ms. */
  baseDelayMs?: number;
  /**
   * Longest backoff. Default 2 000 ms: the replacement must be under way inside
   * a two-minute notice, and core retries the whole call after this.
   */
  maxDelayMs?: number;
  /** Random source in [0, 1) for the jitter. Default `Math.random`. */
  random?: () => number;
}

/**
 * A retry strategy for the SDK clients: throttling, transient and 5xx errors are
 * retried with capped exponential backoff; client errors are not. The SDK's own
 * default waits at least a second after throttling, too long for a spot notice
 * and for tests; this one is bounded by {@link RetryOptions}.
 */
export function retryStrategy(options: RetryOptions = {}): SdkRetryStrategy {
  const maxAttempts = options.maxAttempts ?? 4;
  const baseDelayMs = options.baseDelayMs ?? 100;
  const maxDelayMs = options.maxDelayMs ?? 2_000;
  const random = options.random ?? Math.random;
  const token = (retryCount: number, delay: number): RetryToken => ({ getRetryCount: () => retryCount, getRetryDelay: () => delay });
  return {
    acquireInitialRetryToken: async () => token(0, 0),
    refreshRetryTokenForRetry: async (previous, info) => {
      const retryCount = previous.getRetryCount() + 1;
      // Throwing tells the SDK to give up and surface the call's own error.
      if (info.errorType === 'CLIENT_ERROR' || retryCount >= maxAttempts) throw new Error('no retry');
      // The SDK waits this long (abortably) before the next attempt.
      return token(retryCount, Math.round(random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (retryCount - 1))));
    },
    recordSuccess: () => undefined,
  };
}
