import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** The built CLI, as `npx hollowtrees` runs it. */
export const CLI_PATH = new URL('../../dist/cli.js', import.meta.url).pathname;

export type LogLine = Record<string, unknown>;

/** A `hollowtrees` process whose JSON log lines a test can wait on. */
export interface CliProcess {
  child: ChildProcess;
  lines: LogLine[];
  /** Resolves with the first line (counting from `from`) that matches; rejects if the process exits first. */
  waitFor(predicate: (line: LogLine) => boolean, from?: number): Promise<LogLine>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** Base URL once started, from the `hollowtrees started` line. */
  url(): Promise<string>;
  /** What the process wrote to stderr so far. */
  stderr(): string;
}

/** Options for {@link startCli}; default environment and directory: this process'. */
export interface StartCliOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** A command the CLI runs under, e.g. `['unshare', '-m', 'sh', '-c', '...; exec "$0" "$@"']`. */
  wrap?: string[];
}

const running = new Set<ChildProcess>();

/** Starts the CLI with `args`; every process still running is killed by {@link killAllCli}. */
export function startCli(args: string[], options: StartCliOptions = {}): CliProcess {
  const { wrap = [], ...spawnOptions } = options;
  const [command, ...prefix] = [...wrap, process.execPath];
  const child = spawn(command!, [...prefix, CLI_PATH, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...spawnOptions });
  running.add(child);
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      lines.push({ msg: line });
    }
    for (const w of waiters) w();
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    // 'close', not 'exit': by then everything it wrote has been read.
    child.once('close', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  const waitFor = async (predicate: (line: LogLine) => boolean, from = 0): Promise<LogLine> => {
    for (;;) {
      const found = lines.slice(from).find(predicate);
      if (found) return found;
      let wake!: () => void;
      const next = new Promise<void>((resolve) => (wake = resolve));
      waiters.add(wake);
      const code = await Promise.race([next.then(() => undefined), exited]);
      waiters.delete(wake);
      if (code !== undefined && !lines.slice(from).some(predicate)) {
        throw new Error(`hollowtrees exited with ${code} before the expected line; stderr: ${stderr}; log: ${JSON.stringify(lines.slice(-5))}`);
      }
    }
  };
  const url = async (): Promise<string> => {
    const started = await waitFor((l) => l.msg === 'hollowtrees started');
    return `${started.tls ? 'https' : 'http'}://${started.listen as string}`;
  };
  return { child, lines, waitFor, exited, url, stderr: () => stderr };
}

/** Kills every CLI process a test left running. */
export function killAllCli(): void {
  for (const child of running) child.kill('SIGKILL');
}
