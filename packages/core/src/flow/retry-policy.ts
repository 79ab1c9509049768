import { exponentialBackoff } from '@hollowtrees/grpcplugin/without-grpc';
import type { RetryConfig } from '../config/schema.js';

/**
 * Delay before retry number `attempt` (1 = after the first failure), from the
 * plugin's retry policy: the SDK's jittered exponential backoff, in whole ms.
 */
export function backoffDelay(policy: RetryConfig, attempt: number, random: () => number): number {
  const { initialBackoff: initialMs, maxBackoff: maxMs, multiplier } = policy;
  return Math.round(exponentialBackoff({ initialMs, maxMs, multiplier, random })(attempt));
}
