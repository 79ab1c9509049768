/** The servers under test, each in its own process: Hollowtrees (its CLI) and Prometheus Alertmanager. */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { startAlertmanager as startAlertmanagerProcess, startOnFreePort, tempDir, type Spawned } from '@hollowtrees/testkit';
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

/** A memory field of /proc/<pid>/status in bytes: `VmRSS` (resident now) or `VmHWM` (the peak). */
export function readRss(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no ${field} for pid ${pid}`);
  return Number(match[1]) * 1024;
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 });

/** One HTTP request over a shared keep-alive agent; resolves with status and body text. */
function httpRequest(url: string, method = 'GET', body?: string): Promise<{ status: number; text: string }> {
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

/**
 * POSTs an alerts body and fails on anything but 200; with `resendOn503`, a 503 (Hollowtrees'
 * queues are full) is sent again a second later, as Prometheus re-sends a refused batch.
 */
export async function postAlerts(baseUrl: string, body: string, { resendOn503 = false } = {}): Promise<void> {
  for (;;) {
    const res = await httpRequest(`${baseUrl}/api/v2/alerts`, 'POST', body);
    if (res.status === 200) return;
    if (res.status !== 503 || !resendOn503) throw new Error(`POST ${baseUrl}/api/v2/alerts: HTTP ${res.status}: ${res.text.slice(0, 300)}`);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

/** The built CLI of @hollowtrees/core. */
function hollowtreesCli(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@hollowtrees/core/package.json')), 'dist', 'cli.js');
}

export interface HollowtreesOptions {
  /** host:port of the bench's gRPC plugin. */
  pluginAddress: string;
  /** Extra `node` flags, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
  /** Keep run state in this journal (survives the target's stop). Default: memory only. */
  stateFile?: string;
  /** Share run state in Leases of this API server instead (`state.backend: kubernetes`). */
  kubernetesState?: { kubeconfig: string; namespace: string };
  /** `server.limits.maxBodyBytes`, for batches over the default 1 MiB. */
  maxBodyBytes?: number;
  /** The plugin's `transport`. Default: core's own default (`auto`, the stream). */
  transport?: 'stream' | 'unary';
  /** The flow's `concurrency`; fewer than the runs sent leaves a backlog queued. Default 1,000. */
  concurrency?: number;
}

/**
 * Starts Hollowtrees through its CLI with one flow, grouped by instance, into
 * the bench's gRPC plugin; every group stays held for 1h once its run
 * succeeded. Logs at warn, so a run's info line costs nothing.
 */
export async function startHollowtrees(options: HollowtreesOptions): Promise<Target> {
  const dir = await tempDir('bench-hollowtrees');
  const config = join(dir.path, 'config.yaml');
  await writeFile(
    config,
    `log:
  level: warn
${stateYaml(options)}server:
  shutdownGracePeriod: 1s${options.maxBodyBytes ? `\n  limits: { maxBodyBytes: ${options.maxBodyBytes} }` : ''}
plugins:
  sink:
    type: grpc
    address: ${options.pluginAddress}
    timeout: 30s${options.transport ? `\n    transport: ${options.transport}` : ''}
flows:
  reclaim:
    allowedEvents: [prometheus.server.alert.${BENCH_ALERTNAME}]
    groupBy: [instance_id]
    cooldown: 1h
    concurrency: ${options.concurrency ?? 1000}
    queueSize: 1000000
    plugins: [sink]
`,
  );
  const started = await startOnFreePort(
    'hollowtrees',
    process.execPath,
    (port) => [...(options.nodeArgs ?? []), hollowtreesCli(), '--config', config, '--listen', `127.0.0.1:${port}`],
    '/-/ready',
  );
  return asTarget('Hollowtrees', started, dir);
}

function stateYaml({ stateFile, kubernetesState: kube }: HollowtreesOptions): string {
  if (stateFile) return `state:\n  file: ${stateFile}\n`;
  if (kube) return `state:\n  backend: kubernetes\n  kubernetes: { namespace: ${kube.namespace}, kubeconfig: "${kube.kubeconfig}" }\n`;
  return '';
}

/** A started server as a {@link Target}; `stop` also removes its directory. */
function asTarget(name: string, { proc, port }: { proc: Spawned; port: number }, dir: { remove: () => Promise<void> }): Target {
  const pid = proc.child.pid!;
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    pid,
    rss: () => readRss(pid),
    async stop() {
      await proc.kill();
      await dir.remove();
    },
  };
}

/**
 * Reads a gauge or counter from Hollowtrees' /metrics, summed over its series,
 * or over those whose labels include every pair of `labels`.
 */
export async function readMetric(baseUrl: string, name: string, labels: Readonly<Record<string, string>> = {}): Promise<number> {
  const { text } = await httpRequest(`${baseUrl}/metrics`);
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    const series = line.slice(name.length, line.lastIndexOf(' '));
    if (wanted.every((pair) => series.includes(pair))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * Starts Alertmanager with one route grouped by instance, `group_wait: 0s`,
 * into a webhook receiver at `webhookUrl`; clustering off, fresh storage.
 */
export async function startAlertmanager(webhookUrl: string): Promise<Target> {
  const dir = await tempDir('bench-alertmanager');
  const yml = `route:
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
`;
  return asTarget('Alertmanager', await startAlertmanagerProcess(ALERTMANAGER_BIN, dir.path, yml, ['--log.level=warn']), dir);
}
