#!/usr/bin/env node
import { exitOnStopWhileStarting, jsonLogger, packageVersion } from '@hollowtrees/grpcplugin/without-grpc';
import { parseCliArgs, USAGE, UsageError } from './cli-args.js';
import { SERVICE } from './options.js';

async function main(argv: readonly string[]): Promise<number> {
  let command;
  try {
    command = parseCliArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`hollowtrees-k8s-drain: ${err.message}\nRun with --help for the flags.\n`);
    return 2;
  }
  if (command.kind === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (command.kind === 'version') {
    process.stdout.write(`${packageVersion(import.meta.url)}\n`);
    return 0;
  }
  const started = exitOnStopWhileStarting();
  // Loaded only to serve: @kubernetes/client-node and gRPC are most of a second, which --help, --version and a usage error never need.
  const [{ loadKubeConfig }, { checkClusterAccess }, { createDrainHandler }, { serve }] = await Promise.all([
    import('./kube-config.js'),
    import('./cluster-access.js'),
    import('./drain-handler.js'),
    import('@hollowtrees/grpcplugin'),
  ]);
  let kubeConfig;
  try {
    kubeConfig = loadKubeConfig({ path: command.kubeconfig, context: command.context });
    await checkClusterAccess(kubeConfig);
  } catch (err) {
    process.stderr.write(`hollowtrees-k8s-drain: no usable Kubernetes credentials: ${(err as Error).message}\nSet --kubeconfig (or $KUBECONFIG) and --context, or run in a pod with a service account bound to the ClusterRole hollowtrees-k8s-drain (deploy/kubernetes/base/k8s-drain-rbac.yaml).\n`);
    return 2;
  }
  const logger = jsonLogger({ service: SERVICE });
  const { POD_NAMESPACE: namespace, POD_NAME: name } = process.env;
  const ownPod = namespace && name ? { namespace, name } : undefined;
  const handler = createDrainHandler(kubeConfig, { ...command.drain, logger, ...(ownPod ? { ownPod } : {}) });
  // The caches list the cluster now, so the first drain of a wave finds them ready.
  handler.start();
  let server;
  try {
    // The pod watch and the connections are closed after the calls drain.
    const handleSignals = { inFlight: 'drains', afterClose: () => handler.close() };
    server = await serve(command.port, handler, { host: command.host, tls: command.tls, shutdownTimeoutMs: command.shutdownTimeoutMs, logger, handleSignals });
  } catch (err) {
    await handler.close();
    throw err;
  }
  // serve() handles the signals from here on.
  started();
  logger.info('hollowtrees-k8s-drain serving', { host: command.host, port: server.port, tls: command.tls !== undefined, dryRun: command.drain.dryRun ?? false, ...(ownPod ? { ownPod: `${ownPod.namespace}/${ownPod.name}` } : {}) });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`hollowtrees-k8s-drain: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
