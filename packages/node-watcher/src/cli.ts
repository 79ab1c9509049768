#!/usr/bin/env node
import { createJsonLogger, exitOnStopWhileStarting, runBin } from '@hollowtrees/grpcplugin/without-grpc';
import { parseCliArgs, USAGE, type WatcherSettings } from './cli-args.js';

const NAME = 'hollowtrees-node-watcher';

/** Loaded only to watch: the metrics and the cloud monitors, which --help, --version and a usage error never need. */
const loadWatching = (): Promise<typeof import('./run-watcher.js')> => import('./run-watcher.js');

async function watch({ settings }: { settings: WatcherSettings }): Promise<number | undefined> {
  const logger = createJsonLogger({ service: NAME, level: settings.logLevel });
  if (settings.once) {
    // Not the 0 of a stop while starting: a --once stopped before core accepted what it found (or while it still loads
    // the code that looks) did not deliver it.
    const stopped = (): void => {
      logger.error('stopped before core accepted what the check found: exiting 1');
      process.exit(1);
    };
    process.once('SIGTERM', stopped).once('SIGINT', stopped);
    const { runOnce } = await loadWatching();
    return runOnce(settings, { logger });
  }
  const started = exitOnStopWhileStarting();
  const { runWatcher } = await loadWatching();
  const running = await runWatcher(settings, { logger });
  logger.info({ listen: settings.listen, health_port: running.health.port, core_url: settings.coreUrl ?? null, node: settings.nodeName ?? null }, `${NAME} started`);
  const shutdown = (): void => {
    logger.info('stopping');
    void running.stop().then(() => process.exit(0));
  };
  started();
  process.once('SIGTERM', shutdown).once('SIGINT', shutdown);
  return undefined;
}

void runBin({ name: NAME, usage: USAGE, moduleUrl: import.meta.url, parse: (argv) => parseCliArgs(argv, process.env), run: watch });
