import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

/** `ENOENT: no such file or directory, open '/x'` as `no such file or directory`: the caller names the file and where it was named. */
function readProblem(err: unknown): string {
  // Node's EISDIR message names no file and says "illegal operation on a directory, read".
  if ((err as NodeJS.ErrnoException | undefined)?.code === 'EISDIR') return 'it is a directory, not a file';
  const message = err instanceof Error ? err.message : String(err);
  return /^E[A-Z]+: ([^,]+), \w+ '.*'$/.exec(message)?.[1] ?? message;
}

/** The files a `$KUBECONFIG` list names, as the client reads it: empty entries (`a::b`, a trailing `:`) are skipped. */
function listedFiles(list: string): string[] {
  return list.split(delimiter).filter(Boolean);
}

/**
 * The file of a `$KUBECONFIG` list where the client stopped: it loads the first, then loads and merges each next one, and
 * its error names no file (EISDIR), not which of the list, or none at all (`Duplicate cluster: x` from a merge).
 */
function failingListFile(list: string): string | undefined {
  const files = listedFiles(list);
  if (files.length < 2) return undefined;
  const merged = new KubeConfig();
  return files.find((file, i) => {
    try {
      // As the client does: the first file loaded as it is, each next one merged into it.
      const next = i === 0 ? merged : new KubeConfig();
      next.loadFromFile(file);
      if (next !== merged) merged.mergeConfig(next);
      return false;
    } catch {
      return true;
    }
  });
}

/**
 * Loads a kubeconfig: the file at `path` when given, else the client's default
 * chain ($KUBECONFIG, ~/.kube/config, then the in-cluster service account).
 * `context` switches from the file's current context.
 * @throws Error naming the file (the one of a `$KUBECONFIG` list) and where it was named (`--kubeconfig`, `$KUBECONFIG`, `~/.kube/config`) when it cannot
 * be read or names no context to use; when `$KUBECONFIG` lists no file (only empty entries); when the default chain finds nothing (the client would
 * silently fall back to http://localhost:8080, which fails only at the first call); or when
 * `context` is not in the file.
 */
export function loadKubeConfig(options: { path?: string; context?: string } = {}): KubeConfig {
  const kc = new KubeConfig();
  const { KUBECONFIG } = process.env;
  const home = join(homedir(), '.kube', 'config');
  // The default chain's next file after $KUBECONFIG: named too, an operator may not know it is there.
  const source = options.path ? `--kubeconfig ${options.path}` : KUBECONFIG ? `$KUBECONFIG ${KUBECONFIG}` : existsSync(home) ? `~/.kube/config ${home}` : 'the kubeconfig';
  // Set but naming no file, the client would load `undefined` and say only that a "path" argument must be a string.
  if (!options.path && KUBECONFIG && listedFiles(KUBECONFIG).length === 0) {
    throw new Error(`${source}: it lists no file, only empty entries: set it to a kubeconfig's path (several separated by "${delimiter}"), or unset it`);
  }
  try {
    if (options.path) kc.loadFromFile(options.path);
    else kc.loadFromDefault();
  } catch (err) {
    const file = !options.path && KUBECONFIG ? failingListFile(KUBECONFIG) : undefined;
    throw new Error(`${file ? `$KUBECONFIG ${file} (one of ${KUBECONFIG})` : source}: ${readProblem(err)}`);
  }
  // The client's last resort when the chain found nothing: a cluster named "cluster" at localhost:8080.
  if (!options.path && kc.getCurrentContext() === 'loaded-context' && kc.getCurrentCluster()?.name === 'cluster' && kc.getCurrentCluster()?.server === 'http://localhost:8080') {
    throw new Error('no kubeconfig found: $KUBECONFIG is unset, ~/.kube/config does not exist, and there is no in-cluster service account');
  }
  const contexts = kc.getContexts().map((c) => c.name);
  const has = `(it has: ${contexts.join(', ') || 'none'})`;
  if (options.context) {
    if (!kc.getContextObject(options.context)) throw new Error(`${source}: it has no context "${options.context}" ${has}`);
    kc.setCurrentContext(options.context);
  } else if (!kc.getContextObject(kc.getCurrentContext())) {
    // Any YAML loads (a wrong file, an empty one): said here, not as "no cluster for context undefined" at the first call.
    const current = kc.getCurrentContext();
    if (contexts.length === 0) throw new Error(`${source}: it names no current-context and has no contexts: is it a kubeconfig?`);
    // A current-context naming a context since deleted is not "none": the operator would look for a missing line.
    throw new Error(current ? `${source}: its current-context "${current}" is none of its contexts: pass --context ${has}` : `${source}: it names no current-context: pass --context ${has}`);
  }
  return kc;
}
