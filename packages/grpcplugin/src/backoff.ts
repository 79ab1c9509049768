/** Milliseconds to wait before retry number `attempt` (1 for the first retry). */
export type Backoff = (attempt: number) => number;

/** Options of {@link exponentialBackoff}; every field has a default. */
export interface ExponentialBackoffOptions {
  /** First wait. Default 250 ms. */
  initialMs?: number;
  /** Longest wait. Default 5 000 ms. */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  multiplier?: number;
  /** Returns [0, 1). Default `Math.random`. */
  random?: () => number;
}

/**
 * Waits growing by `multiplier` from `initialMs` up to `maxMs`, each scaled by a
 * random factor in [0.5, 1) so a wave of failed calls does not retry in lockstep.
 * Core's plugin retries and the drain plugin's API retries share it; the AWS plugin's
 * retries live in the AWS SDK's retry-strategy interface, with full jitter.
 */
export function exponentialBackoff(options: ExponentialBackoffOptions = {}): Backoff {
  const { initialMs = 250, maxMs = 5_000, multiplier = 2, random = Math.random } = options;
  return (attempt) => Math.min(maxMs, initialMs * multiplier ** (attempt - 1)) * (0.5 + random() / 2);
}
