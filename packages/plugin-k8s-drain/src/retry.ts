import type { PluginError } from '@hollowtrees/grpcplugin';
import { isTransient, toPluginError } from './api-errors.js';
import { DeadlineReachedError, type Deadline } from './deadline.js';

/** Milliseconds to wait before retry number `attempt` (1 for the first retry). */
export type Backoff = (attempt: number) => number;

/** Options of {@link exponentialBackoff}; every field has a default. */
export interface ExponentialBackoffOptions {
  /** First wait. Default 250 ms. */
  initialMs?: number;
  /** Longest wait. Default 5 000 ms. */
  maxMs?: number;
  /** Returns [0, 1); spreads retries of many pods apart. Default `Math.random`. */
  random?: () => number;
}

/** Doubling waits from `initialMs` up to `maxMs`, each scaled by a random factor in [0.5, 1). */
export function exponentialBackoff(options: ExponentialBackoffOptions = {}): Backoff {
  const { initialMs = 250, maxMs = 5_000, random = Math.random } = options;
  return (attempt) => Math.min(maxMs, initialMs * 2 ** (attempt - 1)) * (0.5 + random() / 2);
}

/**
 * Runs a Kubernetes call, repeating it after transient failures (see
 * `isTransient`) while the next wait still ends before the deadline. Throws a
 * PluginError saying what was being done: the last failure (also when the
 * deadline cut a retry short), or DEADLINE_EXCEEDED when the first call ran out of time.
 */
export async function withRetries<T>(
  op: (attempt: number) => Promise<T>,
  context: { deadline: Deadline; backoff: Backoff; doing: string },
): Promise<T> {
  const { deadline, backoff, doing } = context;
  let last: PluginError | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await deadline.race(op(attempt));
    } catch (err) {
      // Out of time: the last failure, if any, says more than the deadline does.
      if (err instanceof DeadlineReachedError && last) throw last;
      last = toPluginError(err, doing);
    }
    const wait = backoff(attempt);
    if (!isTransient(last) || deadline.remainingMs() <= wait) throw last;
    try {
      await deadline.sleep(wait);
    } catch (err) {
      throw err instanceof DeadlineReachedError ? last : toPluginError(err, doing);
    }
  }
}
