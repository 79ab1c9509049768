import { Code, forEachBounded, PluginError } from '@hollowtrees/grpcplugin';
import type { V1Pod } from '@kubernetes/client-node';
import type { Deadline } from './deadline.js';
import type { KubeApi } from './kube-api.js';
import type { PluginLogger as Logger } from '@hollowtrees/grpcplugin';
import { isNamespaceTerminating } from './api-errors.js';
import { podKey } from './pod-filter.js';
import type { Backoff } from '@hollowtrees/grpcplugin';
import { withRetries } from './retry.js';

/** What became of the pods given to {@link evictPods}. */
export interface EvictionOutcome {
  evicted: V1Pod[];
  /** Gone before their eviction (404, or 409: another pod has their name now). */
  gone: V1Pod[];
  /** Refused because their namespace is being deleted: the namespace controller deletes them, so they are waited for like the evicted. */
  deletedWithNamespace: V1Pod[];
  /** Still on the node when the drain stopped, with the last reason. */
  remaining: Array<{ pod: V1Pod; reason: string }>;
}

/** How {@link evictPods} runs. */
export interface EvictRun {
  deadline: Deadline;
  backoff: Backoff;
  logger: Logger;
  /** Evictions in flight at once. */
  concurrency: number;
  /** Cap on each pod's grace period, in seconds; undefined keeps each pod's own. */
  gracePeriodSeconds: number | undefined;
  /** Runs before each retry of a refused eviction (a budget's 429, say): it may abort `deadline` to stop the evictions. */
  beforeRetry?: () => Promise<void>;
}

/** The grace period to ask for: the pod's own (default 30 s), capped by `cap`. */
export function gracePeriodFor(pod: V1Pod, cap: number | undefined): number | undefined {
  return cap === undefined ? undefined : Math.min(pod.spec?.terminationGracePeriodSeconds ?? 30, cap);
}

// Worth retrying until the deadline: a budget's 429, throttling, conflicts, server errors, and the deadline itself.
const STOPS_AT_DEADLINE = new Set([Code.ResourceExhausted, Code.Unavailable, Code.Aborted, Code.DeadlineExceeded]);

/**
 * Evicts the pods through the Eviction API, `concurrency` at a time. A pod a
 * PodDisruptionBudget protects is retried with backoff until the budget
 * allows it or the deadline passes; it is then reported as remaining.
 * @throws PluginError on a failure no retry can fix (e.g. PERMISSION_DENIED), or CANCELLED.
 */
export async function evictPods(api: KubeApi, pods: readonly V1Pod[], run: EvictRun): Promise<EvictionOutcome> {
  const outcome: EvictionOutcome = { evicted: [], gone: [], deletedWithNamespace: [], remaining: [] };
  let fatal: PluginError | undefined;
  await forEachBounded(pods, run.concurrency, async (pod) => {
    const key = podKey(pod);
    if (run.deadline.signal.aborted) {
      outcome.remaining.push({ pod, reason: 'the drain stopped before its turn' });
      return;
    }
    const grace = gracePeriodFor(pod, run.gracePeriodSeconds);
    try {
      // The uid, so a pod deleted and recreated under the name since (a StatefulSet's, elsewhere) is not evicted in its place: 404 or 409, gone.
      const options = { uid: pod.metadata?.uid, signal: run.deadline.signal };
      const evict = (): Promise<unknown> => api.evictPod(pod.metadata?.namespace ?? 'default', pod.metadata?.name ?? '', grace, options);
      await withRetries((attempt) => (attempt > 1 && run.beforeRetry ? run.beforeRetry().then(evict) : evict()), {
        deadline: run.deadline,
        backoff: run.backoff,
        doing: `evicting pod ${key}`,
      });
      outcome.evicted.push(pod);
      run.logger.info('evicted pod', { pod: key, gracePeriodSeconds: grace });
    } catch (err) {
      const e = err as PluginError;
      if (e.code === Code.NotFound) outcome.gone.push(pod);
      else if (isNamespaceTerminating(e)) {
        outcome.deletedWithNamespace.push(pod);
        run.logger.info('not evicting pod: its namespace is being deleted, and the pod with it', { pod: key });
      } else {
        outcome.remaining.push({ pod, reason: e.message });
        if (!STOPS_AT_DEADLINE.has(e.code) && !fatal) {
          fatal = e;
          // Stop the other pods' retries: the call fails anyway.
          run.deadline.abort(e);
        }
      }
    }
  });
  if (fatal) throw fatal;
  return outcome;
}
