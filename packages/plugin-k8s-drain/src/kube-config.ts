import { KubeConfig } from '@kubernetes/client-node';

/**
 * Loads a kubeconfig: the file at `path` when given, else the client's default
 * chain ($KUBECONFIG, ~/.kube/config, then the in-cluster service account).
 * `context` switches from the file's current context.
 * @throws Error when the default chain finds nothing (the client would silently fall back to
 * http://localhost:8080, which fails only at the first call) or `context` is not in the file.
 */
export function loadKubeConfig(options: { path?: string; context?: string } = {}): KubeConfig {
  const kc = new KubeConfig();
  if (options.path) kc.loadFromFile(options.path);
  else {
    kc.loadFromDefault();
    // The client's last resort when the chain found nothing: a cluster named "cluster" at localhost:8080.
    if (kc.getCurrentContext() === 'loaded-context' && kc.getCurrentCluster()?.name === 'cluster' && kc.getCurrentCluster()?.server === 'http://localhost:8080') {
      throw new Error('no kubeconfig found: $KUBECONFIG is unset, ~/.kube/config does not exist, and there is no in-cluster service account');
    }
  }
  if (options.context) {
    if (!kc.getContextObject(options.context)) throw new Error(`the kubeconfig has no context "${options.context}" (it has: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'})`);
    kc.setCurrentContext(options.context);
  }
  return kc;
}
