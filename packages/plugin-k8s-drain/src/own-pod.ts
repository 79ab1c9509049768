import { StartFailure } from '@hollowtrees/grpcplugin/without-grpc';

/**
 * The pod this plugin runs in, from `POD_NAMESPACE` and `POD_NAME` (the downward API's, as the manifests set them),
 * or `undefined` when neither is set (not in a pod).
 * @throws StartFailure (exit 2) naming the missing one when only one is set: its own pod would not be spared by a
 * drain of its node (which would stop the drain), nor would `--pool-namespace` default to POD_NAMESPACE as documented.
 */
export function ownPodFromEnv(env: NodeJS.ProcessEnv = process.env): { namespace: string; name: string } | undefined {
  const { POD_NAMESPACE: namespace, POD_NAME: name } = env;
  if (namespace && name) return { namespace, name };
  if (!namespace && !name) return undefined;
  const [set, missing] = namespace ? ['POD_NAMESPACE', 'POD_NAME'] : ['POD_NAME', 'POD_NAMESPACE'];
  throw new StartFailure(
    `${set} is set (${JSON.stringify(namespace || name)}) but ${missing} is not: set both from the downward API (metadata.namespace, metadata.name), so a drain of its node never evicts the pod this plugin runs in, or neither`,
    2,
  );
}
