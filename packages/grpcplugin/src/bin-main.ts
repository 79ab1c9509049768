import { UsageError } from './cli-flags.js';
import { packageVersion } from './package-version.js';

/** What a bin's command line asks for besides its own commands: the help text or the version. */
export type InfoCommand = { readonly kind: 'help' } | { readonly kind: 'version' };

/**
 * A failure at start that the bin has said all about (no credentials, no region): {@link runBin}
 * prints its message after the bin's name, without a stack, and exits with `exitCode`.
 */
export class StartFailure extends Error {
  override readonly name: string = 'StartFailure';
  /**
   * @param message what went wrong and what to do about it.
   * @param exitCode the process's exit code: 2 for what the operator must change (flags, environment, files), 1 otherwise.
   */
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
  }
}

/** A Hollowtrees command line, as {@link runBin} runs it. */
export interface Bin<C> {
  /** The bin's name: it starts every line the bin writes to stderr. */
  readonly name: string;
  /** The `--help` text. */
  readonly usage: string;
  /** The bin's `import.meta.url`: `--version` prints the version of the package it belongs to. */
  readonly moduleUrl: string;
  /** Reads the command line (without `node` and the script). Throws {@link UsageError} for a bad one. */
  parse(argv: readonly string[]): C | InfoCommand;
  /**
   * Runs the command, importing what it needs only now (`--help`, `--version` and a usage error must
   * not wait on gRPC or a cloud SDK). Resolves with the exit code, or `undefined` while the process
   * serves on (its signal handlers end it). A {@link UsageError} or {@link StartFailure} it throws is
   * said without a stack; anything else is a bug, said with its stack, exit 1.
   */
  run(command: C): Promise<number | undefined>;
}

/** The exit code of bad usage, as of bad configuration; 0 and 1 are ok and a runtime failure. */
const EXIT_USAGE = 2;

function isInfo<C>(command: C | InfoCommand): command is InfoCommand {
  const kind = (command as { kind?: unknown }).kind;
  return kind === 'help' || kind === 'version';
}

/** What `argv` comes to: the exit code, or `undefined` while serving. Writes what the user is told. */
async function outcome<C>(bin: Bin<C>, argv: readonly string[]): Promise<number | undefined> {
  try {
    const command = bin.parse(argv);
    if (!isInfo(command)) return await bin.run(command);
    const text = command.kind === 'help' ? bin.usage : packageVersion(bin.moduleUrl);
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    return 0;
  } catch (err) {
    // One line naming what was wrong and one saying where help is: the whole help text would scroll the mistake away.
    if (err instanceof UsageError) {
      process.stderr.write(`${bin.name}: ${err.message}\nRun '${bin.name} --help' for usage.\n`);
      return EXIT_USAGE;
    }
    if (err instanceof StartFailure) {
      process.stderr.write(`${bin.name}: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`${bin.name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

/**
 * Runs a bin the one way every Hollowtrees bin runs: `--help` and `--version` to stdout with exit 0,
 * a usage error as `<name>: <what is wrong>` and `Run '<name> --help' for usage.` on stderr with
 * exit 2, then the command. Once the command resolves with an exit code the process exits with it,
 * after 100 ms at the latest: what the command owned is closed by then, but a client may keep a
 * timer (grpc-js' waitForReady deadline outlives its channel), and an exit must not wait on it.
 * @param argv the arguments, without `node` and the script; default `process.argv.slice(2)`.
 */
export async function runBin<C>(bin: Bin<C>, argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const code = await outcome(bin, argv);
  if (code === undefined) return;
  process.exitCode = code;
  setTimeout(() => process.exit(code), 100).unref();
}
