import type { Backoff, PluginError } from '@hollowtrees/grpcplugin';
import { isTransient, toPluginError } from './api-errors.js';
import { DeadlineReachedError, type Deadline } from './deadline.js';

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
