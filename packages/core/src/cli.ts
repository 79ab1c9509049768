#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { packageVersion, refuseEmptyFlags } from '@hollowtrees/grpcplugin';
import { startHollowtrees, StartupError } from './app.js';
import { readConfigFiles } from './config/config-files.js';
import { ConfigError } from './config/config-error.js';
import { LISTEN_FORMAT, parseListenAddress } from './config/listen-address.js';
import { defaultConfig } from './config/default-config.js';
import { loadConfigFile, type LoadedConfig } from './config/load-config.js';
import { explainEvent, formatExplanation } from './explain/explain-event.js';
import { ExplainInputError, readExplainInput } from './explain/read-events.js';
import { createLogger } from './logger.js';

/** Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage. */
const EXIT_RUNTIME = 1;
const EXIT_USAGE = 2;

/** The flags `validate` and `explain` take; `--help` and `--version` are answered before any command. */
const SUBCOMMAND_FLAGS: ReadonlySet<string> = new Set(['config', 'help', 'version']);

const HELP = `Usage:
  hollowtrees [--config FILE] [--dry-run] [--listen HOST:PORT]
  hollowtrees validate --config FILE
  hollowtrees explain --config FILE [FILE|-]
  hollowtrees --version | --help

Turns Prometheus alerts into CloudEvents and runs the configured action flows.
Without --config it runs on the embedded default: receiver on 127.0.0.1:9092,
one demo flow that logs every firing alert.

explain reads an alert (Alertmanager API v2 alert or list of them, or a webhook
payload), a CloudEvent, or an SQS message body (EventBridge, Auto Scaling; region
from $AWS_REGION where the message names none) in JSON from FILE or stdin and
prints, per flow, whether it takes the event and why not, its group key and the
plugins that would run.

Options:
  -c, --config FILE     YAML configuration (see examples/config.yaml)
      --dry-run         run the flows, log what each plugin would get, call none; run
                        state in memory only, no sources.sqs queue read
      --listen ADDR     override server.listen: HOST:PORT, e.g. 127.0.0.1:9092 (this
                        machine only) or :9092 (every interface); a bare port is refused
  -h, --help            this text
  -v, --version         the version

Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage.
`;

/** `hollowtrees explain`: what each flow would do with the alert or event in `input` (a file, or stdin when absent or `-`). */
async function explain(loaded: LoadedConfig, input: string | undefined): Promise<number> {
  const name = input === undefined || input === '-' ? '<stdin>' : input;
  let body: Buffer;
  try {
    body = name === '<stdin>' ? await readStdin() : await readFile(name);
  } catch (err) {
    process.stderr.write(`hollowtrees explain: ${name}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}\n`);
    return EXIT_USAGE;
  }
  let read;
  try {
    read = await readExplainInput(body, new Date(), loaded.config.server.limits, process.env.AWS_REGION);
  } catch (err) {
    if (!(err instanceof ExplainInputError)) throw err;
    process.stderr.write(`hollowtrees explain: ${name}: ${err.message}\n`);
    return EXIT_USAGE;
  }
  for (const event of read.events) process.stdout.write(formatExplanation(event, explainEvent(event, loaded.config.flows)));
  // The receiver takes the other alerts of such a batch, but answers it 400: still input to fix.
  if (read.refused === undefined) return 0;
  process.stderr.write(`hollowtrees explain: ${name}: the receiver would refuse ${read.refused}\n`);
  return EXIT_USAGE;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        'dry-run': { type: 'boolean' },
        listen: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
    // `--config ""` (an unset variable) must not run the embedded default instead of the file meant.
    refuseEmptyFlags(parsed.values);
  } catch (err) {
    process.stderr.write(`hollowtrees: ${(err as Error).message}\n\n${HELP}`);
    return EXIT_USAGE;
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  const maxPositionals = command === 'explain' ? 2 : 1;
  // Checked before --help and --version, as the other bins do: an argument they would drop is a mistake to show.
  if (positionals.length > maxPositionals || (command !== undefined && command !== 'validate' && command !== 'explain')) {
    process.stderr.write(`hollowtrees: unknown command ${JSON.stringify(positionals.join(' '))}\n\n${HELP}`);
    return EXIT_USAGE;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${packageVersion(import.meta.url)}\n`);
    return 0;
  }

  // validate and explain only read the file: a flag of the run (`--dry-run`, `--listen`) would be silently ignored.
  const ignored = command === undefined ? undefined : Object.keys(values).find((flag) => !SUBCOMMAND_FLAGS.has(flag));
  if (ignored !== undefined) {
    process.stderr.write(`hollowtrees ${command}: --${ignored} is not taken by ${command} (it takes --config FILE)\n`);
    return EXIT_USAGE;
  }

  if (values.listen !== undefined && !parseListenAddress(values.listen)) {
    process.stderr.write(`hollowtrees: --listen ${JSON.stringify(values.listen)}: ${LISTEN_FORMAT}\n`);
    return EXIT_USAGE;
  }

  let loaded: LoadedConfig;
  try {
    if (command !== undefined) {
      const file = values.config;
      if (!file) {
        process.stderr.write(`hollowtrees ${command}: --config FILE is required\n`);
        return EXIT_USAGE;
      }
      loaded = await loadConfigFile(file);
      if (command === 'explain') return await explain(loaded, positionals[1]);
      await readConfigFiles(loaded); // what start-up reads and checks, with the same errors
      for (const warning of loaded.warnings) process.stderr.write(`warning: ${warning}\n`);
      const flows = Object.keys(loaded.config.flows);
      process.stdout.write(`${file}: valid (${flows.length} flow${flows.length === 1 ? '' : 's'}: ${flows.join(', ')})\n`);
      return 0;
    }
    loaded = values.config ? await loadConfigFile(values.config) : defaultConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }

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
    process.once(signal, () => exit(EXIT_RUNTIME)); // a second signal means: now
    running.close().then(() => exit(0), (err: unknown) => {
      logger.error({ err }, 'shutdown failed');
      exit(EXIT_RUNTIME);
    });
  };
  process.off('SIGTERM', onStopWhileStarting).off('SIGINT', onStopWhileStarting);
  process.off('SIGHUP', onHupWhileStarting);
  process.on('SIGHUP', requestReload);
  if (stopWhileStarting !== undefined) {
    // Stopping already: the other signal too means now.
    const other = stopWhileStarting === 'SIGTERM' ? 'SIGINT' : 'SIGTERM';
    process.once(other, () => exit(EXIT_RUNTIME));
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

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Everything core owns is closed by now, but a plugin client can keep a timer: grpc-js' waitForReady
    // deadline (up to the plugin's timeout) outlives the channel's close. The log is flushed; do not wait on it.
    setTimeout(() => process.exit(code), 100).unref();
  },
  (err: unknown) => {
    process.stderr.write(`hollowtrees: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(EXIT_RUNTIME);
  },
);
