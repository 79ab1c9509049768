/** The servers under test, each in its own process: Hollowtrees (its CLI) and Prometheus Alertmanager. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { BENCH_ALERTNAME } from './alerts.js';

export const ALERTMANAGER_BIN = process.env.ALERTMANAGER_BIN ?? '/usr/bin/prometheus-alertmanager';

/** A server process under test. */
export interface Target {
  name: string;
  url: string;
  pid: number;
  /** Resident set size now, from /proc/<pid>/status, in bytes. */
  rss(): number;
  stop(): Promise<void>;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** VmRSS of a process, in bytes. */
export function readRss(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const agent = new Agent({ keepAlive: true, maxSockets: 4 });

/** One HTTP request over a shared keep-alive agent; resolves with status and body text. */
export function httpRequest(url: string, method = 'GET', body?: string): Promise<{ status: number; text: string }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    const req = request({ agent, host: target.hostname, port: target.port, path: target.pathname + target.search, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** POSTs an alerts body and fails on anything but 200. */
export async function postAlerts(baseUrl: string, body: string): Promise<void> {
  const res = await httpRequest(`${baseUrl}/api/v2/alerts`, 'POST', body);
  if (res.status !== 200) throw new Error(`POST ${baseUrl}/api/v2/alerts: HTTP ${res.status}: ${res.text.slice(0, 300)}`);
}

async function waitReady(url: string, child: ChildProcess, output: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`process exited before ${url} was ready:\n${output()}`);
    try {
      if ((await httpRequest(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs} ms:\n${output()}`);
    await sleep(50);
  }
}

function spawnKept(command: string, args: string[], cwd?: string): { child: ChildProcess; output: () => string } {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
  let kept = '';
  const keep = (chunk: Buffer): void => {
    kept = (kept + chunk.toString('utf8')).slice(-8_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, output: () => kept };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
}

/** A fresh temporary directory (removed by the target's `stop`) holding one config file. */
function writeTempConfig(prefix: string, fileName: string, text: string): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const config = join(dir, fileName);
  writeFileSync(config, text);
  return { dir, config };
}

/** The built CLI of @hollowtrees/core. */
function hollowtreesCli(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@hollowtrees/core/package.json')), 'dist', 'cli.js');
}

export interface HollowtreesOptions {
  /** host:port of the bench's gRPC plugin. */
  pluginAddress: string;
  /** Default 1h: every group stays held once its run succeeded. */
  cooldown?: string;
  /** Extra `node` flags, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
  /** Working directory for the process (where --cpu-prof writes). */
  cwd?: string;
}

/**
 * Starts Hollowtrees through its CLI with one flow, grouped by instance, into
 * the bench's gRPC plugin. Logs at warn, so a run's info line costs nothing.
 */
export async function startHollowtrees(options: HollowtreesOptions): Promise<Target> {
  const { dir, config } = writeTempConfig(
    'hollowtrees-bench-',
    'config.yaml',
    `log:
  level: warn
server:
  shutdownGracePeriod: 1s
plugins:
  sink:
    type: grpc
    address: ${options.pluginAddress}
    timeout: 30s
flows:
  reclaim:
    allowedEvents: [prometheus.server.alert.${BENCH_ALERTNAME}]
    groupBy: [instance_id]
    cooldown: ${options.cooldown ?? '1h'}
    concurrency: 1000
    queueSize: 1000000
    plugins: [sink]
`,
  );
  const port = await freePort();
  const args = [...(options.nodeArgs ?? []), hollowtreesCli(), '--config', config, '--listen', `127.0.0.1:${port}`];
  const { child, output } = spawnKept(process.execPath, args, options.cwd ?? dir);
  return readyTarget('Hollowtrees', `http://127.0.0.1:${port}`, child, output, dir);
}

/** Waits until the server answers /-/ready, then wraps it as a {@link Target} that cleans up its directory. */
async function readyTarget(name: string, url: string, child: ChildProcess, output: () => string, dir: string): Promise<Target> {
  await waitReady(`${url}/-/ready`, child, output);
  return {
    name,
    url,
    pid: child.pid!,
    rss: () => readRss(child.pid!),
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Reads a gauge or counter sample (summed over its series) from Hollowtrees' /metrics. */
export async function readMetric(baseUrl: string, name: string): Promise<number> {
  const { text } = await httpRequest(`${baseUrl}/metrics`);
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(name) && (line[name.length] === '{' || line[name.length] === ' ')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * Starts Alertmanager with one route grouped by instance, `group_wait: 0s`,
 * into a webhook receiver at `webhookUrl`; clustering off, fresh storage.
 */
export async function startAlertmanager(webhookUrl: string): Promise<Target> {
  const { dir, config } = writeTempConfig(
    'alertmanager-bench-',
    'alertmanager.yml',
    `route:
  receiver: sink
  group_by: [instance_id]
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: sink
    webhook_configs:
      - url: ${webhookUrl}
        send_resolved: false
`,
  );
  const port = await freePort();
  const { child, output } = spawnKept(ALERTMANAGER_BIN, [
    `--config.file=${config}`,
    `--storage.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--cluster.listen-address=',
    '--log.level=warn',
  ]);
  return readyTarget('Alertmanager', `http://127.0.0.1:${port}`, child, output, dir);
}
