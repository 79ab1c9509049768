import { Code, PluginError } from '@hollowtrees/grpcplugin';
import type { V1Pod } from '@kubernetes/client-node';
import { DeadlineReachedError, type Deadline } from './deadline.js';
import type { KubeApi } from './kube-api.js';
import type { Backoff } from '@hollowtrees/grpcplugin';
import { withRetries } from './retry.js';

/**
 * Polls the node's pods every `pollMs` until none of `pods` (matched by uid, so a
 * replacement with the same name does not count) is left, or the deadline is
 * near. Resolves with the pods still there.
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
    // Running out of time while waiting is not a failure: the pods were evicted.
    const outOfTime = err instanceof DeadlineReachedError || (err instanceof PluginError && err.code === Code.DeadlineExceeded);
    if (!outOfTime) throw err;
  }
  return left;
}
