#!/usr/bin/env node
import { exitOnStopWhileStarting, jsonLogger, runBin, serveStartFailure, StartFailure } from '@hollowtrees/grpcplugin/without-grpc';
import { parseCliArgs, USAGE, type ServeCommand } from './cli-args.js';
import { SERVICE } from './options.js';
import { ownPodFromEnv } from './own-pod.js';

async function serveDrains(command: ServeCommand): Promise<undefined> {
  const started = exitOnStopWhileStarting();
  // Before the slow start: a half-set environment is the operator's to fix, whatever the cluster says.
  const ownPod = ownPodFromEnv();
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
    throw new StartFailure(
      `no usable Kubernetes credentials: ${(err as Error).message}\nSet --kubeconfig (or $KUBECONFIG) and --context, or run in a pod with a service account bound to the ClusterRole hollowtrees-k8s-drain (deploy/kubernetes/base/k8s-drain-rbac.yaml).`,
      2,
    );
  }
  const logger = jsonLogger({ service: SERVICE });
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
    throw serveStartFailure(err, command.host);
  }
  // serve() handles the signals from here on.
  started();
  logger.info('hollowtrees-k8s-drain serving', { host: command.host, port: server.port, tls: command.tls !== undefined, dryRun: command.drain.dryRun ?? false, ...(ownPod ? { ownPod: `${ownPod.namespace}/${ownPod.name}` } : {}) });
  return undefined;
}

void runBin({ name: SERVICE, usage: USAGE, moduleUrl: import.meta.url, parse: parseCliArgs, run: serveDrains });
