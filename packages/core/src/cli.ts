#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { packageVersion, refuseEmptyFlags } from '@hollowtrees/grpcplugin/without-grpc';
import { ConfigError } from './config/config-error.js';
import { LISTEN_FORMAT, parseListenAddress } from './config/listen-address.js';
import { EXIT_RUNTIME, EXIT_USAGE } from './cli/exit-codes.js';

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

  // Each command loads only what it needs: `--version` or `validate` must not wait on the server stack, and a test suite starts hundreds.
  try {
    if (command === undefined) return await (await import('./cli/run-command.js')).runCommand(values);
    const file = values.config;
    if (!file) {
      process.stderr.write(`hollowtrees ${command}: --config FILE is required\n`);
      return EXIT_USAGE;
    }
    if (command === 'explain') return await (await import('./cli/explain-command.js')).explainCommand(file, positionals[1]);
    return await (await import('./cli/validate-command.js')).validateCommand(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
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
