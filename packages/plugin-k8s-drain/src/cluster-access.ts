import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { Code } from '@hollowtrees/grpcplugin';
import { toPluginError } from './api-errors.js';

const HINTS: Partial<Record<Code, string>> = {
  [Code.Unauthenticated]: ' (the API server refused the credentials)',
  [Code.PermissionDenied]: ' (the user lacks the ClusterRole hollowtrees-k8s-drain of deploy/kubernetes)',
};

/** How long the start-up check waits for the API server. */
const CHECK_TIMEOUT_MS = 10_000;

/**
 * Proves at start that the kubeconfig works: one authenticated call the drain needs anyway (list
 * nodes, one item), so a missing kubeconfig, bad credentials, missing RBAC or an unreachable API
 * server stop the plugin at once instead of failing its first drain.
 * @throws Error saying which API server and what went wrong.
 */
export async function checkClusterAccess(kubeConfig: KubeConfig, timeoutMs = CHECK_TIMEOUT_MS): Promise<void> {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error(`the kubeconfig has no cluster for context "${kubeConfig.getCurrentContext()}"`);
  const where = `the Kubernetes API at ${cluster.server}`;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${where} did not answer within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    await Promise.race([kubeConfig.makeApiClient(CoreV1Api).listNode({ limit: 1 }), timedOut]);
  } catch (err) {
    if (err instanceof Error && err.message.startsWith(where)) throw err;
    const failure = toPluginError(err, 'listing nodes');
    throw new Error(`cannot list nodes with ${where} (user "${kubeConfig.getCurrentUser()?.name ?? 'none'}"): ${failure.message}${HINTS[failure.code] ?? ''}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}
