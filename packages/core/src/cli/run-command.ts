import { startHollowtrees, StartupError } from '../app.js';
import { ConfigError } from '../config/config-error.js';
import { defaultConfig } from '../config/default-config.js';
import { loadConfigFile } from '../config/load-config.js';
import { createLogger } from '../logger.js';
import type { EarlySignals } from './early-signals.js';
import { EXIT_RUNTIME, EXIT_USAGE } from './exit-codes.js';

/** The flags of a run, as the command line gave them. */
export interface RunFlags {
  /** The configuration file; absent: the embedded default. */
  config?: string;
  'dry-run'?: boolean;
  /** Overrides `server.listen`, already checked to be HOST:PORT. */
  listen?: string;
}

/**
 * `hollowtrees [--config FILE]`: starts core and resolves with the exit code once it stopped (SIGTERM, SIGINT,
 * a fatal error); SIGHUP reloads the file. A bad configuration file throws its ConfigError.
 * @param early the signals the CLI kept while this module loaded: taken as if they came once its own listeners are in place.
 */
export async function runCommand(values: RunFlags, early?: EarlySignals): Promise<number> {
  const loaded = values.config ? await loadConfigFile(values.config) : defaultConfig();

  const logger = createLogger(loaded.config.log.level);
  if (!values.config) {
    logger.warn(`no --config given: running on the embedded default configuration (receiver on ${values.listen ?? loaded.config.server.listen}, flow "demo" into the log plugin)`);
  }
  let exit!: (code: number) => void;
  const exitCode = new Promise<number>((resolve) => (exit = resolve));
  // SIGHUP's default action ends the process. Start-up can take seconds (a long journal, the
  // Kubernetes state backend): a reload asked for meanwhile (systemctl reload, a config reloader) is done once started.
  let hupWhileStarting = false;
  let reloading = false;
  let reloadAgain = false;
  const onHupWhileStarting = (): void => {
    hupWhileStarting = true;
  };
  process.on('SIGHUP', onHupWhileStarting);
  // SIGTERM or SIGINT while starting (waiting on a state file's lock, reading a long journal) is a stop asked
  // for too early, not lost: as PID 1 of a container (node is the image's entrypoint) the kernel drops a signal
  // that has no listener, and the pod ran on until SIGKILL at its grace period's end, its runs cut short
  // then. It is made, gracefully, once core has started; a second one ends the process at once.
  let stopWhileStarting: NodeJS.Signals | undefined;
  const onStopWhileStarting = (signal: NodeJS.Signals): void => {
    if (stopWhileStarting === undefined) {
      stopWhileStarting = signal;
      return;
    }
    logger.flush();
    process.exit(EXIT_RUNTIME);
  };
  process.on('SIGTERM', onStopWhileStarting).on('SIGINT', onStopWhileStarting);
  // Signals that came while the command loaded: as if they came now.
  early?.release();
  for (const signal of early?.signals ?? []) (signal === 'SIGHUP' ? onHupWhileStarting() : onStopWhileStarting(signal));
  let app;
  try {
    // A stop Hollowtrees had to make by itself (it lost its state file's lock) is a runtime failure:
    // exit 1, so that systemd's Restart=on-failure starts it again.
    const onFatal = (): void => exit(EXIT_RUNTIME);
    app = await startHollowtrees(loaded, { logger, dryRun: values['dry-run'] ?? false, onFatal, ...(values.listen ? { listen: values.listen } : {}) });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return EXIT_USAGE;
    }
    // A known failure's message says it all; anything else keeps its stack.
    if (err instanceof StartupError) logger.fatal(err.message);
    else logger.fatal({ err }, (err as Error).message);
    logger.flush();
    return EXIT_RUNTIME;
  }
  const running = app;
  const stop = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'shutting down');
    // A second signal means: now, whichever of SIGTERM and SIGINT it is (the first one's other listener would stop again).
    process.off('SIGTERM', stop).off('SIGINT', stop);
    const now = (): void => exit(EXIT_RUNTIME);
    process.once('SIGTERM', now).once('SIGINT', now);
    running.close().then(() => exit(0), (err: unknown) => {
      logger.error({ err }, 'shutdown failed');
      exit(EXIT_RUNTIME);
    });
  };
  process.off('SIGTERM', onStopWhileStarting).off('SIGINT', onStopWhileStarting);
  process.off('SIGHUP', onHupWhileStarting);
  process.on('SIGHUP', requestReload);
  if (stopWhileStarting !== undefined) {
    // Stopping already: either signal again means now (stop() listens for both).
    stop(stopWhileStarting);
    return exitCode;
  }
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  if (hupWhileStarting) requestReload();
  return exitCode;

  /**
   * SIGHUP. The file is read by one reload at a time: two reads at once could finish in either order (a slow disk,
   * a network filesystem), and the file as it was at the first SIGHUP would be left running over the one of the
   * last. A SIGHUP during a read asks for one more read once it is done, however many came meanwhile.
   */
  function requestReload(): void {
    if (reloading) {
      if (!reloadAgain) logger.info('SIGHUP while the configuration is being read: read again once this read is done');
      reloadAgain = true;
      return;
    }
    reloading = true;
    void (async () => {
      do {
        reloadAgain = false;
        await reload();
      } while (reloadAgain);
      reloading = false;
    })();
  }

  /** A good new file replaces the running configuration; a bad one is logged and the old one kept. */
  async function reload(): Promise<void> {
    if (!values.config) {
      logger.warn('SIGHUP: running on the embedded default, there is no file to reload');
      return;
    }
    const rejected = (err: unknown): void => {
      const detail = err instanceof ConfigError ? { problems: err.message.split('\n') } : { err };
      logger.error(detail, 'configuration reload rejected; the running configuration stays');
    };
    let next;
    try {
      next = await loadConfigFile(values.config);
    } catch (err) {
      rejected(err);
      return;
    }
    // Not awaited: it resolves once the runs in flight finished on the old plugins, which may take minutes, and a
    // later SIGHUP must not wait for those. The swap itself happens in call order (its file checks are synchronous).
    running.reload(next).catch(rejected);
  }
}
