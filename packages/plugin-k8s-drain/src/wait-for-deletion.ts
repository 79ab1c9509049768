import { Code, PluginError } from '@hollowtrees/grpcplugin';
import type { V1Pod } from '@kubernetes/client-node';
import { DeadlineReachedError, type Deadline } from './deadline.js';
import type { KubeApi } from './kube-api.js';
import type { Backoff } from '@hollowtrees/grpcplugin';
import { isTransient } from './api-errors.js';
import { withRetries } from './retry.js';

/**
 * Polls the node's pods every `pollMs` until none of `pods` (matched by uid, so a
 * replacement with the same name does not count) is left, or the deadline is
 * near. Resolves with the pods still there: the evictions went through, so
 * pods not seen gone by then (the API server answering 5xx until the deadline
 * included) leave the drain a success that says how many were left.
 */
export async function waitForPodsGone(
  api: KubeApi,
  nodeName: string,
  pods: readonly V1Pod[],
  run: { deadline: Deadline; backoff: Backoff; pollMs: number },
): Promise<V1Pod[]> {
  let left = [...pods];
  try {
    while (left.length > 0 && run.deadline.remainingMs() > run.pollMs) {
      await run.deadline.sleep(run.pollMs);
      const present = await withRetries(() => api.listPodsOnNode(nodeName), { ...run, doing: `listing the pods of node "${nodeName}"` });
      const uids = new Set(present.map((p) => p.metadata?.uid));
      left = left.filter((p) => uids.has(p.metadata?.uid));
    }
  } catch (err) {
    // Running out of time while waiting is not a failure: the pods were evicted. withRetries lets
    // a transient failure out only once the deadline leaves no time for another try.
    const outOfTime = err instanceof DeadlineReachedError || (err instanceof PluginError && (err.code === Code.DeadlineExceeded || isTransient(err)));
    if (!outOfTime) throw err;
  }
  return left;
}
