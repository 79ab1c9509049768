#!/usr/bin/env node
import { exitOnStopWhileStarting, jsonLogger, runBin, serveStartFailure, StartFailure } from '@hollowtrees/grpcplugin/without-grpc';
import { parseCliArgs, USAGE, type ServeCommand } from './cli-args.js';

async function serveReplacements(command: ServeCommand): Promise<undefined> {
  const started = exitOnStopWhileStarting();
  // Loaded only to serve: the AWS SDK and gRPC are most of a second, which --help, --version and a usage error never need.
  const [{ resolveDefaultRegion }, { AwsSpotReplaceHandler, SERVICE }, { serve }] = await Promise.all([
    import('./default-region.js'),
    import('./replace-handler.js'),
    import('@hollowtrees/grpcplugin'),
  ]);
  let region: string;
  try {
    region = await resolveDefaultRegion(command.handler.region);
  } catch (err) {
    throw new StartFailure((err as Error).message, 2);
  }
  const logger = jsonLogger({ service: SERVICE });
  const handler = new AwsSpotReplaceHandler({ ...command.handler, region, logger });
  let server;
  try {
    // The SDK clients are released after the calls drain.
    server = await serve(command.port, handler, { ...command.serve, logger, handleSignals: { afterClose: () => handler.close() } });
  } catch (err) {
    void handler.close();
    throw serveStartFailure(err, command.serve.host);
  }
  // serve() handles the signals from here on.
  started();
  logger.info('hollowtrees-aws-spot serving', {
    host: command.serve.host,
    port: server.port,
    tls: command.serve.tls !== undefined,
    region,
    strategy: command.handler.strategy ?? 'auto',
    dry_run: command.handler.dryRun,
  });
  return undefined;
}

void runBin({ name: 'hollowtrees-aws-spot', usage: USAGE, moduleUrl: import.meta.url, parse: parseCliArgs, run: serveReplacements });
