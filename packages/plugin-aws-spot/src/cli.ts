#!/usr/bin/env node
import { exitOnStopWhileStarting, jsonLogger, packageVersion } from '@hollowtrees/grpcplugin/without-grpc';
import { parseCliArgs, USAGE, UsageError, type CliCommand } from './cli-args.js';

let command: CliCommand;
try {
  command = parseCliArgs(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`hollowtrees-aws-spot: ${err.message}\n\n${USAGE}\n`);
  process.exit(2);
}

if (command.kind === 'help') {
  process.stdout.write(`${USAGE}\n`);
} else if (command.kind === 'version') {
  process.stdout.write(`${packageVersion(import.meta.url)}\n`);
} else {
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
    process.stderr.write(`hollowtrees-aws-spot: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const logger = jsonLogger({ service: SERVICE });
  const handler = new AwsSpotReplaceHandler({ ...command.handler, region, logger });
  try {
    // The SDK clients are released after the calls drain.
    const server = await serve(command.port, handler, { ...command.serve, logger, handleSignals: { afterClose: () => handler.close() } });
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
  } catch (err) {
    void handler.close();
    process.stderr.write(`hollowtrees-aws-spot: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
