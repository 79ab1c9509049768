#!/usr/bin/env node
import { serve } from '@hollowtrees/grpcplugin';
import { parseCliArgs, USAGE, UsageError, type CliCommand } from './cli-args.js';
import { jsonLogger } from '@hollowtrees/grpcplugin';
import { AwsSpotReplaceHandler, SERVICE } from './replace-handler.js';

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
} else {
  const logger = jsonLogger({ service: SERVICE });
  const handler = new AwsSpotReplaceHandler({ ...command.handler, logger });
  try {
    const server = await serve(command.port, handler, command.serve);
    // serve() is not told to handle signals: the SDK clients must be released after it drains.
    const shutdown = (): void => {
      void server.close().then(() => handler.close());
    };
    process.once('SIGTERM', shutdown).once('SIGINT', shutdown);
    logger.info('hollowtrees-aws-spot serving', {
      host: command.serve.host,
      port: server.port,
      tls: command.serve.tls !== undefined,
      strategy: command.handler.strategy ?? 'auto',
      dry_run: command.handler.dryRun,
    });
  } catch (err) {
    handler.close();
    process.stderr.write(`hollowtrees-aws-spot: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
