import type { RetryConfig } from '../config/schema.js';

/**
 * Delay before retry number `attempt` (1 = after the first failure):
 * exponential from `initialBackoff`, capped at `maxBackoff`, with jitter in
 * [50%, 100%] so a wave of failed calls does not retry in lockstep.
 */
export function backoffDelay(policy: RetryConfig, attempt: number, random: () => number): number {
  const base = Math.min(policy.maxBackoff, policy.initialBackoff * policy.multiplier ** (attempt - 1));
  return Math.round(base * (0.5 + random() / 2));
}
