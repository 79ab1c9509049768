/**
 * Helpers for end-to-end tests that drive the real Prometheus and Alertmanager
 * binaries (Debian packages `prometheus`, `prometheus-alertmanager`): finding
 * them, free ports, temp dirs, spawning with captured output, readiness and
 * cleanup. The e2e tests skip loudly when a binary is missing, and fail when
 * `CI=true`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe } from 'vitest';
import type { RecordedCall } from '../test-support/recording-plugin.js';
import type { TestCore } from '../test-support/start-core.js';
import type { AlertEventData } from '../receiver/alert-to-event.js';

/** A binary an e2e test needs, and the Debian package that provides it. */
export interface RequiredBinary {
  command: string;
  debianPackage: string;
}

export const PROMETHEUS: RequiredBinary = { command: 'prometheus', debianPackage: 'prometheus' };
export const ALERTMANAGER: RequiredBinary = { command: 'prometheus-alertmanager', debianPackage: 'prometheus-alertmanager' };

/** Looks a command up on PATH as `which` does; undefined when it is not there. */
export function findBinary(command: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, fsConstants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * `describe` when every binary is on PATH, with their absolute paths.
 * When one is missing: under `CI=true` the file fails (a missing binary is a
 * broken CI image, not a reason to skip); elsewhere the suite is skipped with a
 * loud warning saying what to install.
 */
export function describeWithBinaries(
  title: string,
  binaries: readonly RequiredBinary[],
  body: (paths: Record<string, string>) => void,
): void {
  const paths: Record<string, string> = {};
  const missing: RequiredBinary[] = [];
  for (const binary of binaries) {
    const found = findBinary(binary.command);
    if (found) paths[binary.command] = found;
    else missing.push(binary);
  }
  if (missing.length === 0) {
    describe(title, () => body(paths));
    return;
  }
  const message =
    `${missing.map((b) => `"${b.command}"`).join(' and ')} not found on PATH. ` +
    `Install with: apt-get install ${missing.map((b) => b.debianPackage).join(' ')} ` +
    `(every end-to-end test: apt-get install ${PROMETHEUS.debianPackage} ${ALERTMANAGER.debianPackage})`;
  if (process.env.CI === 'true') {
    throw new Error(`CI=true and a required binary is missing, so "${title}" cannot run: ${message}`);
  }
  const bar = '!'.repeat(100);
  console.warn(`\n${bar}\n!!! SKIPPING end-to-end tests "${title}":\n!!! ${message}\n!!! Under CI=true this is a failure.\n${bar}\n`);
  describe.skip(title, () => body(paths));
}

/** A TCP port that was free a moment ago on 127.0.0.1 (bind port 0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
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

/** Spawns a command with stdout and stderr captured. */
export function spawnCaptured(name: string, command: string, args: readonly string[]): Spawned {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Last resort if the runner dies before afterAll: never leave a Prometheus behind.
    process.once('exit', () => {
      for (const child of alive) child.kill('SIGKILL');
    });
  }
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
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
    async kill(graceMs = 3_000) {
      if (done) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The output of each process, framed, for a failure report. */
export function outputReport(processes: ReadonlyArray<Spawned | undefined>): string {
  return processes
    .filter((p): p is Spawned => p !== undefined)
    .map((p) => `----- ${p.name} output (pid ${p.child.pid ?? '?'}, ${p.hasExited() ? 'exited' : 'running'}) -----\n${p.output()}\n----- end of ${p.name} -----`)
    .join('\n');
}

/**
 * Polls `url` until it answers 200. Fails early, with the process output, when
 * the process exits first; fails at the deadline otherwise.
 */
export async function waitForHttpOk(url: string, proc: Spawned, timeoutMs = 10_000, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    if (proc.hasExited()) throw new Error(`${proc.name} exited (${await proc.exited}) before ${url} was ready\n${outputReport([proc])}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${proc.name}: ${url} not ready after ${timeoutMs} ms (${last})\n${outputReport([proc])}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Starts a server on a free port and waits until `readyPath` answers 200. The
 * port is found by binding port 0 and closing it, so another process can take
 * it in between: an instance that dies on start is retried on a new port.
 */
export async function startOnFreePort(
  name: string,
  command: string,
  args: (port: number) => string[],
  readyPath: string,
  timeoutMs = 10_000,
): Promise<{ proc: Spawned; port: number }> {
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const proc = spawnCaptured(name, command, args(port));
    try {
      await waitForHttpOk(`http://127.0.0.1:${port}${readyPath}`, proc, timeoutMs);
      return { proc, port };
    } catch (err) {
      lastError = err as Error;
      const exitedEarly = proc.hasExited();
      await proc.kill();
      if (!exitedEarly || !/address already in use/i.test(proc.output())) break;
    }
  }
  throw lastError ?? new Error(`${name} did not start`);
}

/**
 * Writes `prometheus.yml` and `rules.yml` into `dir` and starts Prometheus on
 * them (data in `dir/prometheus-data`) on a free port, re-sending firing alerts
 * once a second (`--rules.alert.resend-delay=1s`); resolves once `/-/ready` answers.
 */
export async function startPrometheus(
  command: string,
  dir: string,
  config: { prometheusYml: string; rulesYml: string },
): Promise<{ proc: Spawned; port: number }> {
  await writeFile(join(dir, 'prometheus.yml'), config.prometheusYml);
  await writeFile(join(dir, 'rules.yml'), config.rulesYml);
  return startOnFreePort(
    'prometheus',
    command,
    (port) => [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'prometheus-data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--web.external-url=http://127.0.0.1:${port}/`,
      '--rules.alert.resend-delay=1s',
    ],
    '/-/ready',
  );
}

/**
 * Writes `alertmanager.yml` into `dir` and starts Alertmanager on it (data in
 * `dir/alertmanager-data`, clustering off) on a free port; resolves once `/-/ready` answers.
 */
export async function startAlertmanager(command: string, dir: string, alertmanagerYml: string): Promise<{ proc: Spawned; port: number }> {
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

// ---- core-side helpers shared by the e2e tests ----
/** Sum of a core counter's values whose labels match `labels`. */
export async function counterSum(
  counter: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, string | number | undefined> }> }> },
  labels: Record<string, string>,
): Promise<number> {
  const { values } = await counter.get();
  return values.filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want)).reduce((sum, v) => sum + v.value, 0);
}

/**
 * An RFC 3339 time to epoch milliseconds, truncating sub-millisecond digits
 * (Prometheus' API prints nanoseconds; what it sends to an alertmanager has
 * milliseconds, truncated).
 */
export function epochMs(rfc3339: string): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/i.exec(rfc3339);
  if (!m) throw new Error(`not an RFC 3339 time: ${rfc3339}`);
  const fraction = (m[2] ?? '').slice(0, 3).padEnd(3, '0');
  return Date.parse(`${m[1]}.${fraction}${m[3]}`);
}

/** The data of an alert event a plugin received. */
export function alertData(call: RecordedCall): AlertEventData {
  return call.event.data as AlertEventData;
}

/** A compact description of what core and the plugin saw, for failure messages. */
export async function coreState(core: TestCore | undefined, calls: readonly RecordedCall[]): Promise<string> {
  if (!core) return 'core not started';
  const received = (await core.metrics.eventsReceived.get()).values.map((v) => `${String(v.labels.source)} ${String(v.labels.type)}=${v.value}`);
  const dedup = (await core.metrics.eventsDeduplicated.get()).values.map((v) => `${String(v.labels.flow)}=${v.value}`);
  const rejected = (await core.metrics.requestsRejected.get()).values.map((v) => `${String(v.labels.reason)}=${v.value}`);
  return [
    `received: [${received.join(', ')}]`,
    `deduplicated: [${dedup.join(', ')}]`,
    `rejected: [${rejected.join(', ')}]`,
    `plugin calls: ${JSON.stringify(calls.map((c) => ({ flow: c.flow, type: c.event.type, id: c.event.id, time: c.event.time })))}`,
  ].join('; ');
}

/** The last core log lines, for a failure report. */
export function coreLogTail(core: TestCore | undefined, lines = 40): string {
  if (!core) return '';
  return `----- core logs (last ${lines}) -----\n${core.logs.slice(-lines).map((l) => JSON.stringify(l)).join('\n')}\n----- end of core logs -----`;
}
