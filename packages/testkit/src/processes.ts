/**
 * Child processes for tests and benchmarks: free ports, temp dirs, spawning a
 * server with its output kept for failure reports, waiting until it answers,
 * stopping it, and starting the real Alertmanager binary. Free of any test
 * runner, so the e2e tests and the bench share them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A port of 127.0.0.1 something listens on, for a test of a server started on a port in use; `close()` frees it. */
export async function busyPort(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/**
 * A TCP port free on 127.0.0.1 a moment ago, for a server started later on it. It is picked below the kernel's
 * ephemeral range: `listen(0)` and every outgoing connection take their port from that range, so a port found there
 * and closed again could go to any test's connection before the server binds it; a port below it only goes to a
 * process that binds it by number (another test's pick: about 1 in 13,000 with the default range).
 */
export async function freePort(): Promise<number> {
  const below = ephemeralRangeStart();
  for (let tries = 0; below - PICKED_PORTS_FROM > 100 && tries < 20; tries++) {
    const port = PICKED_PORTS_FROM + Math.floor(Math.random() * (below - PICKED_PORTS_FROM));
    if (await canListen(port)) return port;
  }
  return listenedPort();
}

/** Above the ports well-known servers use (Prometheus 9090, Alertmanager 9093, Hollowtrees 9092...). */
const PICKED_PORTS_FROM = 20_000;

/** The first port of the kernel's ephemeral range (Linux's default where it cannot be read). */
function ephemeralRangeStart(): number {
  try {
    const start = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(start) ? start : 32_768;
  } catch {
    return 32_768;
  }
}

/** Whether a server can listen on `port` of 127.0.0.1 now (it is closed again before this resolves). */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port the kernel picked for `listen(0)`, closed again: the fallback where no range lies below its ephemeral one. */
async function listenedPort(): Promise<number> {
  const { port, close } = await busyPort();
  await close();
  return port;
}

/** A fresh temp directory and its remover. */
export async function tempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `hollowtrees-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** A spawned child process with its output kept (bounded) for the failure report. */
export interface Spawned {
  readonly name: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<string>;
  /** True once the process has exited. */
  hasExited(): boolean;
  /** The last lines the process wrote on stdout and stderr. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  kill(graceMs?: number): Promise<void>;
}

const MAX_KEPT_LINES = 400;
const alive = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Spawns a command with stdout and stderr captured; `env` is added to this process's environment
 * (`undefined` removes a variable); `cwd` is its working directory (default: this process's).
 */
export function spawnCaptured(name: string, command: string, args: readonly string[], env: Readonly<Record<string, string | undefined>> = {}, cwd?: string): Spawned {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Last resort if the runner dies before afterAll: never leave a Prometheus behind.
    process.once('exit', () => {
      for (const child of alive) child.kill('SIGKILL');
    });
  }
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, ...(cwd === undefined ? {} : { cwd }) });
  alive.add(child);
  const lines: string[] = [];
  let partial = '';
  const keep = (chunk: Buffer): void => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    if (lines.length > MAX_KEPT_LINES) lines.splice(0, lines.length - MAX_KEPT_LINES);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let done = false;
  const exited = new Promise<string>((resolve) => {
    child.once('error', (err) => {
      done = true;
      alive.delete(child);
      lines.push(`spawn error: ${err.message}`);
      resolve(`error ${err.message}`);
    });
    child.once('exit', (code, signal) => {
      done = true;
      alive.delete(child);
      resolve(signal ? `signal ${signal}` : `code ${code}`);
    });
  });
  return {
    name,
    child,
    exited,
    hasExited: () => done,
    output: () => [...lines, partial].filter(Boolean).join('\n'),
    async kill(graceMs) {
      if (!done) await stopChild(child, graceMs);
    },
  };
}

/**
 * Resolves with the first line of `proc`'s output matching `pattern`; rejects, with the output,
 * when the process exits first or `timeoutMs` passes.
 */
export async function waitForOutput(proc: Spawned, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = proc.output().split('\n').find((line) => pattern.test(line));
    if (found !== undefined) return found;
    if (proc.hasExited() || Date.now() > deadline) {
      throw new Error(`${proc.name} ${proc.hasExited() ? `exited (${await proc.exited})` : `still running after ${timeoutMs} ms`} without writing ${pattern}\n${outputReport([proc])}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once `child` has exited (at once if it already has). */
export async function stopChild(child: ChildProcess, graceMs = 3_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** The output of each process, framed, for a failure report. */
export function outputReport(processes: ReadonlyArray<Spawned | undefined>): string {
  return processes
    .filter((p): p is Spawned => p !== undefined)
    .map((p) => `----- ${p.name} output (pid ${p.child.pid ?? '?'}, ${p.hasExited() ? 'exited' : 'running'}) -----\n${p.output()}\n----- end of ${p.name} -----`)
    .join('\n');
}

/**
 * Asks whether a server is ready: `true` when it is, otherwise what it said
 * (kept for the failure message). May throw; that counts as not ready.
 */
export type ReadinessProbe = () => Promise<true | string>;

/**
 * Polls `probe` until it answers `true`. Fails early, with the process output,
 * when the process exits first; fails at the deadline otherwise.
 */
export async function waitUntilReady(proc: Spawned, what: string, probe: ReadinessProbe, timeoutMs = 10_000, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    if (proc.hasExited()) throw new Error(`${proc.name} exited (${await proc.exited}) before ${what} was ready\n${outputReport([proc])}`);
    try {
      const answer = await probe();
      if (answer === true) return;
      last = answer;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${proc.name}: ${what} not ready after ${timeoutMs} ms (${last})\n${outputReport([proc])}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A probe that is ready once `url` answers 200. */
export function httpOkProbe(url: string): ReadinessProbe {
  return async () => {
    const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    await res.arrayBuffer();
    return res.status === 200 ? true : `HTTP ${res.status}`;
  };
}

/** Polls `url` until it answers 200 (see {@link waitUntilReady}). */
export function waitForHttpOk(url: string, proc: Spawned, timeoutMs = 10_000, intervalMs = 50): Promise<void> {
  return waitUntilReady(proc, url, httpOkProbe(url), timeoutMs, intervalMs);
}

// How a server says its port was taken: Go's and Node's EADDRINUSE, and Hollowtrees' own words for it.
const PORT_TAKEN = /address already in use|port is already in use/i;

/**
 * Starts a server on a free port and waits until it is ready: `readiness` is
 * an HTTP path that must answer 200, or a probe made for the port. The port is
 * a {@link freePort}, which another process can still take before the server
 * binds it: an instance that dies on start saying so is retried on a new port.
 * `env` is added to this process's environment (`undefined` removes a variable);
 * `cwd` is the server's working directory.
 */
export async function startOnFreePort(
  name: string,
  command: string,
  args: (port: number) => string[],
  readiness: string | ((port: number) => ReadinessProbe),
  options: { timeoutMs?: number; env?: Readonly<Record<string, string | undefined>>; cwd?: string } = {},
): Promise<{ proc: Spawned; port: number }> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const proc = spawnCaptured(name, command, args(port), options.env, options.cwd);
    try {
      if (typeof readiness === 'string') await waitForHttpOk(`http://127.0.0.1:${port}${readiness}`, proc, timeoutMs);
      else await waitUntilReady(proc, `port ${port}`, readiness(port), timeoutMs);
      return { proc, port };
    } catch (err) {
      lastError = err as Error;
      const exitedEarly = proc.hasExited();
      await proc.kill();
      if (!exitedEarly || !PORT_TAKEN.test(proc.output())) break;
    }
  }
  throw lastError ?? new Error(`${name} did not start`);
}


/**
 * Writes `alertmanager.yml` into `dir` and starts Alertmanager on it (data in
 * `dir/alertmanager-data`, clustering off, then `extraArgs`) on a free port;
 * resolves once `/-/ready` answers.
 */
export async function startAlertmanager(command: string, dir: string, alertmanagerYml: string, extraArgs: readonly string[] = []): Promise<{ proc: Spawned; port: number }> {
  await writeFile(join(dir, 'alertmanager.yml'), alertmanagerYml);
  return startOnFreePort(
    'alertmanager',
    command,
    (port) => [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'alertmanager-data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--web.external-url=http://127.0.0.1:${port}/`,
      '--cluster.listen-address=',
      ...extraArgs,
    ],
    '/-/ready',
  );
}

/**
 * Runs each clean-up step in order; each runs even when an earlier one failed
 * (or the thing it stops was never started), so `afterAll` always finishes.
 */
export async function closeEach(steps: ReadonlyArray<() => Promise<unknown> | undefined>): Promise<void> {
  for (const step of steps) {
    try {
      await step();
    } catch {
      // keep going: the next step must still run
    }
  }
}

/** Polls `check` every `intervalMs` until it returns true; throws `describe()` at the deadline. */
export async function pollUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, describeState: () => string | Promise<string>, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms: ${await describeState()}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * How every Hollowtrees bin answers a usage error (the SDK's `runBin`): exit 2, nothing on stdout,
 * and two lines on stderr, what was wrong and how to get help. For `toMatchObject` on a
 * `spawnSync` result.
 */
export function usageRefusal(bin: string, said: string): { status: number; stdout: string; stderr: string } {
  return { status: 2, stdout: '', stderr: `${bin}: ${said}\nRun '${bin} --help' for usage.\n` };
}
