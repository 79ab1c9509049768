/**
 * One run of the wave drill: the stand-ins (own process), the two reference
 * plugins and core, each through its CLI in its own process, core on the
 * given configuration (by default `examples/config.yaml`); every instance's
 * alert is posted at once, in POSTs of 100, and the run is followed until
 * every flow run has finished or the cut-off passes.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { PluginClient } from '@hollowtrees/grpcplugin';
import { pollUntil, startOnFreePort, stopChild, tempDir, wallClockMs, type ReadinessProbe, type Spawned } from '@hollowtrees/testkit';
import { processCpuSeconds } from '../machine.js';
import { postAlerts, readMetric, readRss } from '../targets.js';
import { measureWave, type WaveMeasurement } from './measure.js';
import { waveAlertBodies, type WaveScenario } from './scenario.js';
import type { StandInsReply, StandInsRequest, StandInsSettings } from './standins-process.js';

/** API latency and limits of a run. */
export interface WaveCondition {
  readonly name: string;
  readonly kubeLatencyMs: number;
  readonly awsLatencyMs: number;
  readonly rateLimits: boolean;
}

/** The conditions the drill knows: none; the issue's latency; that latency with AWS-like rate limits (the targets'). */
export const WAVE_CONDITIONS: Readonly<Record<string, WaveCondition>> = {
  none: { name: 'none', kubeLatencyMs: 0, awsLatencyMs: 0, rateLimits: false },
  latency: { name: 'latency', kubeLatencyMs: 20, awsLatencyMs: 100, rateLimits: false },
  'latency+limits': { name: 'latency+limits', kubeLatencyMs: 20, awsLatencyMs: 100, rateLimits: true },
};

/** CPU and memory of one process over a run. */
export interface ProcessUsage {
  /** CPU seconds from the first alert until the end of the run. */
  cpuSeconds: number;
  /**
   * CPU seconds from the first alert until the last reclaimed node was cordoned
   * (read every 100 ms, the first reading at or after it): what the cordons
   * competed with, independent of how busy the machine was.
   */
  cpuSecondsToCordoned: number | undefined;
  /** `cpuSeconds` over that time, % of one core. */
  cpuPercent: number;
  /** Peak resident set (VmHWM), MiB. */
  peakRssMiB: number;
}

export interface WaveRunResult {
  nodes: number;
  groups: number;
  condition: string;
  config: string;
  /** When the last POST was answered, ms after the first was sent. */
  alertsInMs: number;
  /** The machine's 1-minute load average when the wave started (other work shares the CPUs). */
  loadAverage: number;
  /** Runs of every flow the alerts started, by outcome; `unfinished` at the cut-off. */
  runs: { succeeded: number; failed: number; interrupted: number; unfinished: number };
  /** When the last run finished; undefined at the cut-off. */
  finishedMs: number | undefined;
  measurement: WaveMeasurement;
  processes: Record<string, ProcessUsage>;
}

const require = createRequire(import.meta.url);
const packageCli = (pkg: string): string => join(dirname(require.resolve(`${pkg}/package.json`)), 'dist', 'cli.js');
const grpcHealthProbe =
  (port: number): ReadinessProbe =>
  async () => {
    const client = new PluginClient(`127.0.0.1:${port}`);
    try {
      const status = await client.checkHealth({ timeoutMs: 1_000 });
      return status === 'SERVING' ? true : status;
    } finally {
      client.close();
    }
  };

function ask(child: ChildProcess, request: StandInsRequest, kind: StandInsReply['kind']): Promise<StandInsReply> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: StandInsReply): void => {
      if (message.kind === 'failed') reject(new Error(`stand-ins: ${message.error}`));
      else if (message.kind === kind) resolve(message);
      else return;
      child.off('message', onMessage);
    };
    child.on('message', onMessage);
    child.send(request);
  });
}

/** Runs the drill once; every process is fresh and stopped at the end. */
export async function runWaveDrill(options: {
  scenario: WaveScenario;
  condition: WaveCondition;
  configFile: string;
  cutoffMs: number;
  /** Extra flags of the AWS plugin, as the configuration's layout asks for. */
  awsSpotArgs: readonly string[];
  /** Extra flags of the drain plugin. */
  drainArgs: readonly string[];
  /** `node` flags for every process of the run, e.g. `--cpu-prof`. */
  nodeArgs: readonly string[];
}): Promise<WaveRunResult> {
  const { scenario, condition } = options;
  const dir = await tempDir('wave');
  const standIns = fork(new URL('./standins-process.js', import.meta.url).pathname, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...options.nodeArgs] });
  const spawned: Spawned[] = [];
  try {
    const settings: StandInsSettings = { scenario, kubeLatencyMs: condition.kubeLatencyMs, awsLatencyMs: condition.awsLatencyMs, rateLimits: condition.rateLimits };
    const started = await ask(standIns, { kind: 'start', settings }, 'started');
    if (started.kind !== 'started') throw new Error('stand-ins did not start');
    const kubeconfig = join(dir.path, 'kubeconfig');
    await writeFile(kubeconfig, started.kubeconfig);

    const drain = await startOnFreePort('k8s-drain', process.execPath, (port) => [...options.nodeArgs, packageCli('@hollowtrees/plugin-k8s-drain'), '--port', String(port), '--host', '127.0.0.1', '--kubeconfig', kubeconfig, ...options.drainArgs], grpcHealthProbe);
    spawned.push(drain.proc);
    const replace = await startOnFreePort(
      'aws-spot',
      process.execPath,
      (port) => [...options.nodeArgs, packageCli('@hollowtrees/plugin-aws-spot'), '--port', String(port), '--host', '127.0.0.1', '--region', 'us-east-1', '--endpoint', started.awsUrl, ...options.awsSpotArgs],
      grpcHealthProbe,
      { env: { AWS_ACCESS_KEY_ID: 'drill', AWS_SECRET_ACCESS_KEY: 'drill', AWS_EC2_METADATA_DISABLED: 'true' } },
    );
    spawned.push(replace.proc);
    const core = await startOnFreePort(
      'hollowtrees',
      process.execPath,
      (port) => [...options.nodeArgs, packageCli('@hollowtrees/core'), '--config', options.configFile, '--listen', `127.0.0.1:${port}`],
      '/-/ready',
      // A fresh run journal for examples/config.yaml's state.file: no earlier drill's cooldowns hold.
      { env: { K8S_DRAIN_ADDRESS: `127.0.0.1:${drain.port}`, AWS_SPOT_ADDRESS: `127.0.0.1:${replace.port}`, STATE_DIRECTORY: join(dir.path, 'state') } },
    );
    spawned.push(core.proc);
    const coreUrl = `http://127.0.0.1:${core.port}`;

    const pids: Record<string, number> = {
      core: core.proc.child.pid!,
      'k8s-drain': drain.proc.child.pid!,
      'aws-spot': replace.proc.child.pid!,
      'stand-ins': standIns.pid!,
      bench: process.pid,
    };
    const cpuBefore = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, processCpuSeconds(pid)]));
    const loadAverage = loadavg()[0]!;

    const t0 = wallClockMs();
    const cpuReadings: Array<{ atMs: number; cpu: Record<string, number> }> = [];
    const readCpu = (): void => {
      cpuReadings.push({ atMs: wallClockMs() - t0, cpu: Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, processCpuSeconds(pid) - cpuBefore[name]!])) });
    };
    const cpuTimer = setInterval(readCpu, 100);
    cpuTimer.unref();
    await Promise.all(waveAlertBodies(started.instances, 100).map((body) => postAlerts(coreUrl, body)));
    const alertsInMs = wallClockMs() - t0;
    const busy = async (): Promise<number> => (await readMetric(coreUrl, 'hollowtrees_runs_in_progress')) + (await readMetric(coreUrl, 'hollowtrees_queue_depth'));
    let finishedMs: number | undefined;
    try {
      await pollUntil(async () => (await busy()) === 0, options.cutoffMs - alertsInMs, () => 'every run to finish', 100);
      finishedMs = wallClockMs() - t0;
    } catch {
      // The cut-off: what is still running is counted as unfinished.
    }
    clearInterval(cpuTimer);
    readCpu();
    const end = cpuReadings.at(-1)!;
    const peakRssMiB = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, readRss(pid, 'VmHWM') / 2 ** 20]));
    const collected = await ask(standIns, { kind: 'collect' }, 'collected');
    if (collected.kind !== 'collected') throw new Error('stand-ins sent no records');
    const measurement = measureWave(collected.records, started.instances, t0);
    const cordoned = measurement.allCordonedMs;
    const cordonedReading = cordoned === undefined ? undefined : cpuReadings.find((r) => r.atMs >= cordoned);
    const processes = Object.fromEntries(
      Object.keys(pids).map((name) => {
        const cpuSeconds = end.cpu[name]!;
        return [name, { cpuSeconds, cpuSecondsToCordoned: cordonedReading?.cpu[name], cpuPercent: (cpuSeconds / (end.atMs / 1000)) * 100, peakRssMiB: peakRssMiB[name]! }];
      }),
    );
    const outcome = (o: string): Promise<number> => readMetric(coreUrl, 'hollowtrees_flow_runs_total', { outcome: o });
    const runs = { succeeded: await outcome('succeeded'), failed: await outcome('failed'), interrupted: await outcome('interrupted'), unfinished: await busy() };
    return {
      nodes: scenario.nodes,
      groups: scenario.groups,
      condition: condition.name,
      config: options.configFile,
      alertsInMs,
      loadAverage,
      runs,
      finishedMs,
      measurement,
      processes,
    };
  } finally {
    for (const proc of spawned.reverse()) await proc.kill();
    await stopChild(standIns);
    await dir.remove();
  }
}
