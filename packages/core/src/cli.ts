#!/usr/bin/env node
// First: signals that come while the rest loads are kept (see early-signals).
import { earlySignals, resendEarlySignals } from './cli/early-signals.js';
import { parseCommandLine, runBin, UsageError, type InfoCommand } from '@hollowtrees/grpcplugin/without-grpc';
import { ConfigError } from './config/config-error.js';
import { LISTEN_FORMAT, parseListenAddress } from './config/listen-address.js';
import { EXIT_USAGE } from './cli/exit-codes.js';
import type { RunFlags } from './cli/run-command.js';

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

/** What the command line asks for besides `--help` and `--version`. */
type CoreCommand = { kind: 'run'; flags: RunFlags } | { kind: 'validate'; file: string } | { kind: 'explain'; file: string; input: string | undefined };

/** Reads the command line. @throws UsageError naming the argument. */
function parseCommand(argv: readonly string[]): CoreCommand | InfoCommand {
  const { values, positionals } = parseCommandLine(argv, {
    config: { type: 'string', short: 'c' },
    'dry-run': { type: 'boolean' },
    listen: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
  });
  const command = positionals[0];
  const maxPositionals = command === 'explain' ? 2 : 1;
  // Checked before --help and --version, as the other bins do: an argument they would drop is a mistake to show.
  if (positionals.length > maxPositionals || (command !== undefined && command !== 'validate' && command !== 'explain')) {
    throw new UsageError(`unknown command ${JSON.stringify(positionals.join(' '))}`);
  }
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  if (command === undefined) {
    if (values.listen !== undefined && !parseListenAddress(values.listen)) throw new UsageError(`--listen ${JSON.stringify(values.listen)}: ${LISTEN_FORMAT}`);
    return { kind: 'run', flags: values };
  }
  // validate and explain only read the file: a flag of the run (`--dry-run`, `--listen`) would be silently ignored.
  const ignored = Object.keys(values).find((flag) => !SUBCOMMAND_FLAGS.has(flag));
  if (ignored !== undefined) throw new UsageError(`${command} does not take --${ignored} (it takes --config FILE)`);
  if (!values.config) throw new UsageError(`${command} needs --config FILE`);
  return command === 'explain' ? { kind: 'explain', file: values.config, input: positionals[1] } : { kind: 'validate', file: values.config };
}

/** Runs a command, each loading only what it needs: `--version` or `validate` must not wait on the server stack, and a test suite starts hundreds. */
async function runCommand(command: CoreCommand): Promise<number> {
  try {
    if (command.kind === 'run') return await (await import('./cli/run-command.js')).runCommand(command.flags, earlySignals);
    resendEarlySignals();
    if (command.kind === 'explain') return await (await import('./cli/explain-command.js')).explainCommand(command.file, command.input);
    return await (await import('./cli/validate-command.js')).validateCommand(command.file);
  } catch (err) {
    // Its message names the file, the path and what was expected: it says it all.
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
}

void runBin({ name: 'hollowtrees', usage: HELP, moduleUrl: import.meta.url, parse: parseCommand, run: runCommand });
