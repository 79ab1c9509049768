import { KubeConfig } from '@kubernetes/client-node';

/**
 * Loads a kubeconfig: the file at `path` when given, else the client's default
 * chain ($KUBECONFIG, ~/.kube/config, then the in-cluster service account).
 * `context` switches from the file's current context.
 */
export function loadKubeConfig(options: { path?: string; context?: string } = {}): KubeConfig {
  const kc = new KubeConfig();
  if (options.path) kc.loadFromFile(options.path);
  else kc.loadFromDefault();
  if (options.context) kc.setCurrentContext(options.context);
  return kc;
}
