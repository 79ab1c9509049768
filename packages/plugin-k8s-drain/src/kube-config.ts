import { KubeConfig } from '@kubernetes/client-node';

/** `ENOENT: no such file or directory, open '/x'` as `no such file or directory`: the caller names the file and where it was named. */
function readProblem(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return /^E[A-Z]+: ([^,]+), \w+ '.*'$/.exec(message)?.[1] ?? message;
}

/**
 * Loads a kubeconfig: the file at `path` when given, else the client's default
 * chain ($KUBECONFIG, ~/.kube/config, then the in-cluster service account).
 * `context` switches from the file's current context.
 * @throws Error naming the file and where it was named (`--kubeconfig`, `$KUBECONFIG`) when it cannot
 * be read or names no context to use; when the default chain finds nothing (the client would
 * silently fall back to http://localhost:8080, which fails only at the first call); or when
 * `context` is not in the file.
 */
export function loadKubeConfig(options: { path?: string; context?: string } = {}): KubeConfig {
  const kc = new KubeConfig();
  const { KUBECONFIG } = process.env;
  const source = options.path ? `--kubeconfig ${options.path}` : KUBECONFIG ? `$KUBECONFIG ${KUBECONFIG}` : 'the kubeconfig';
  try {
    if (options.path) kc.loadFromFile(options.path);
    else kc.loadFromDefault();
  } catch (err) {
    throw new Error(`${source}: ${readProblem(err)}`);
  }
  // The client's last resort when the chain found nothing: a cluster named "cluster" at localhost:8080.
  if (!options.path && kc.getCurrentContext() === 'loaded-context' && kc.getCurrentCluster()?.name === 'cluster' && kc.getCurrentCluster()?.server === 'http://localhost:8080') {
    throw new Error('no kubeconfig found: $KUBECONFIG is unset, ~/.kube/config does not exist, and there is no in-cluster service account');
  }
  const contexts = kc.getContexts().map((c) => c.name);
  if (options.context) {
    if (!kc.getContextObject(options.context)) throw new Error(`the kubeconfig has no context "${options.context}" (it has: ${contexts.join(', ') || 'none'})`);
    kc.setCurrentContext(options.context);
  } else if (!kc.getContextObject(kc.getCurrentContext())) {
    // Any YAML loads (a wrong file, an empty one): said here, not as "no cluster for context undefined" at the first call.
    throw new Error(contexts.length === 0 ? `${source}: it names no current-context and has no contexts: is it a kubeconfig?` : `${source}: it names no current-context: pass --context (it has: ${contexts.join(', ')})`);
  }
  return kc;
}
