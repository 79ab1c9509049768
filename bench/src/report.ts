/** The bench's results, the pass/fail of each target, and the table printed from them. */
import type { CrashWindowResult } from './crash-window.js';
import type { FloorResult } from './grpc-floor.js';
import type { LoadResult } from './loadgen.js';
import { threadSplitText, threadTimesText, type MachineInfo, type ThreadSplit, type ThreadTimes } from './machine.js';
import type { Summary } from './stats.js';
import type { WaveRunResult } from './wave/drill.js';
import type { ReplicasWaveResult } from './replicas-wave.js';
import type { ChartPanel } from './svg-chart.js';

export interface IngestRun {
  batch: number;
  load: LoadResult;
  /** The server's CPU over the run (warm-up included), % of one core; every process of a server that runs several. */
  serverCpuPercent: number;
  /** The bench process's CPU over the same span: the sink the server acts into (absent before 2026-12-05). */
  benchCpuPercent?: number;
  /** Plugin calls (Hollowtrees) or webhook alerts (Alertmanager) by the end of the run. */
  actionsDelivered: number;
  /**
   * The rate acted on: actions inside the generator's measured window, over that window (the accepted
   * rate's window). Until 2026-12-04 it was `wholeRunPerSecond`.
   */
  actionsPerSecond: number;
  /** `actionsDelivered` over the run's wall time, warm-up included (absent before 2026-12-04, when it was `actionsPerSecond`). */
  wholeRunPerSecond?: number;
}

/** Alerts per POST in the ingest runs; every table and chart row follows this list. */
export const INGEST_BATCHES = [1, 100] as const;

/**
 * Alert → action latencies after a short warm-up (the compared figures); `warm`: the same
 * server timed again once it had handled `warmAfter` alerts (runs before 2026-11-30 noon lack it).
 */
export interface LatencySummary extends Summary {
  warm?: Summary;
  warmAfter?: number;
  /**
   * The server's threads over the compared samples and over the warm ones: its main thread, and its others summed
   * (for Node, V8's compiler and GC threads). Absent before 2026-12-04.
   */
  threads?: { compared: ThreadSplit; warm: ThreadSplit };
}

/** One mass-reclaim wave (bench/src/run.ts). */
export interface ReclaimWave {
  alerts: number;
  pluginDelayMs: number;
  /** POSTs the wave was sent in (absent before 2026-12-02: 100). */
  posts?: number;
  postAnsweredMs: number;
  allCalledMs: number;
  allFinishedMs: number;
  /** Core's CPU time from the first POST to the last plugin call (absent in runs before it was measured). */
  coreCpuMs?: number;
  /** The same span per thread (Linux schedstat): time on a CPU and time runnable but waiting for one (absent before 2026-12-01). */
  threads?: { coreMain: ThreadTimes; coreOthers: ThreadTimes; benchMain: ThreadTimes };
}

export interface BenchResults {
  startedAt: string;
  /** The run-state journal's crash window: 1,000 runs finishing at once, then kill -9 (`crash-window.ts`). */
  crashWindow?: CrashWindowResult;
  wallSeconds: number;
  machine: MachineInfo;
  generatorCeiling: Record<string, LoadResult>;
  /**
   * `relay`: the bare HTTP → gRPC relay (`relay.ts`), the transport's ceiling for this design.
   * `hollowtrees` and `relay` call the plugin over the stream (core's default); the `…Unary` runs over unary calls.
   * `relayTwoProcesses`: the relay on two processes sharing its port (absent before 2026-12-05).
   */
  ingest: { hollowtrees: IngestRun[]; hollowtreesUnary: IngestRun[]; relay: IngestRun[]; relayUnary: IngestRun[]; relayTwoProcesses?: IngestRun[]; alertmanager: IngestRun[] };
  /** `relay`: the same bare relay timed like Hollowtrees, the design's latency floor across processes; `…Unary` as above. */
  latency: { floor: FloorResult; hollowtrees: LatencySummary; hollowtreesUnary: LatencySummary; relay: LatencySummary; relayUnary: LatencySummary; alertmanager: LatencySummary };
  massReclaim: ReclaimWave & {
    /** The same wave again, new instances, after core idled `idleMs` (absent before 2026-12-02). */
    afterIdle?: ReclaimWave & { idleMs: number };
  };
  /** The reclaim wave through replicas sharing Leases (`replicas-wave.ts`), when it ran. */
  replicasWave?: ReplicasWaveResult;
  /** The wave drill (wave/), when it ran. */
  wave?: WaveRunResult[];
  memory: {
    groups: number;
    /** Paced fill: each batch acted on before the next. */
    hollowtrees: MemoryReading;
    /** Burst fill: all batches posted back to back, runs queued behind them. */
    hollowtreesBurst: MemoryReading;
    alertmanager: MemoryReading & { webhookAlerts: number };
  };
}

/** RSS of one server around a fill of `groups` groups. */
export interface MemoryReading {
  /** Before the fill. */
  idleBytes: number;
  fillSeconds: number;
  /** 2 s after the fill: still holds garbage neither runtime has returned yet. */
  loadedBytes: number;
  /** At the end of the settle period, every group still held: the compared figure. */
  settledBytes: number;
  /** One reading a second during the settle period. */
  rssSamplesMiB: number[];
}

export interface TargetCheck {
  name: string;
  target: string;
  measured: string;
  pass: boolean;
}

const fmtRate = (n: number): string => `${Math.round(n).toLocaleString('en-US')}/s`;
const fmtMs = (n: number): string => `${n.toFixed(2)} ms`;
/** Bytes as whole MiB. */
export const fmtMiB = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MiB`;
const fmtRatio = (n: number): string => `${n.toFixed(2)}×`;

function batchRun(runs: IngestRun[], batch: number): IngestRun {
  const run = runs.find((r) => r.batch === batch);
  if (!run) throw new Error(`no ingest run with batch ${batch}`);
  return run;
}

/** The POSTs of a run not answered 2xx (Hollowtrees: 503 once its flows hold their bound), if any. */
const refusedNote = (run: IngestRun): string => (run.load.errors > 0 ? ` (${run.load.errors.toLocaleString('en-US')} POSTs refused)` : '');

/** Each target of issue 7, measured. */
export function checkTargets(r: BenchResults): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const batch of INGEST_BATCHES) {
    const ht = batchRun(r.ingest.hollowtrees, batch).load.alertsPerSecond;
    const am = batchRun(r.ingest.alertmanager, batch).load.alertsPerSecond;
    checks.push({ name: `ingest, batches of ${batch}`, target: '≥ 3× Alertmanager', measured: `${fmtRatio(ht / am)} (${fmtRate(ht)} vs ${fmtRate(am)})`, pass: ht >= 3 * am });
    const htActed = batchRun(r.ingest.hollowtrees, batch).actionsPerSecond;
    const amActed = batchRun(r.ingest.alertmanager, batch).actionsPerSecond;
    checks.push({
      name: `… acted on in the same run, batches of ${batch}`,
      target: '≥ 2.5× Alertmanager\'s',
      measured: `${fmtRatio(htActed / amActed)} (${fmtRate(htActed)} vs ${fmtRate(amActed)})`,
      pass: htActed >= 2.5 * amActed,
    });
  }
  const floorP99 = r.latency.floor.latencyMs.p99;
  const bound = 3 * floorP99 + 1;
  const htP99 = r.latency.hollowtrees.p99;
  const amP99 = r.latency.alertmanager.p99;
  checks.push({ name: 'alert-to-plugin p99 vs floor', target: `≤ 3× floor + 1 ms = ${fmtMs(bound)}`, measured: fmtMs(htP99), pass: htP99 <= bound });
  checks.push({ name: 'alert-to-plugin p99 vs Alertmanager', target: `< Alertmanager p99 (${fmtMs(amP99)})`, measured: fmtMs(htP99), pass: htP99 < amP99 });
  checks.push({ name: `mass reclaim, ${r.massReclaim.alerts} instances`, target: '≤ 1,000 ms', measured: `${r.massReclaim.allCalledMs.toFixed(0)} ms`, pass: r.massReclaim.allCalledMs <= 1_000 });
  const htMem = r.memory.hollowtrees.settledBytes;
  const amMem = r.memory.alertmanager.settledBytes;
  checks.push({ name: `memory, ${r.memory.groups.toLocaleString('en-US')} groups`, target: '≤ 1/5 of Alertmanager', measured: `${fmtMiB(htMem)} vs ${fmtMiB(amMem)} (1/${(amMem / htMem).toFixed(1)})`, pass: htMem * 5 <= amMem });
  return checks;
}

/** A Markdown table. */
export function markdownTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The results table (Markdown), as printed and pasted into the README. */
export function resultsTable(r: BenchResults, checks: readonly TargetCheck[]): string {
  const rows: string[][] = [];
  for (const batch of INGEST_BATCHES) {
    const ht = batchRun(r.ingest.hollowtrees, batch);
    const am = batchRun(r.ingest.alertmanager, batch);
    const ceiling = r.generatorCeiling[`batch${batch}`];
    rows.push([
      `Ingest, batches of ${batch} (alerts/s)`,
      fmtRate(ht.load.alertsPerSecond) + refusedNote(ht),
      fmtRate(am.load.alertsPerSecond) + refusedNote(am),
      ceiling ? `generator ceiling ${fmtRate(ceiling.alertsPerSecond)}` : '',
      `${fmtRatio(ht.load.alertsPerSecond / am.load.alertsPerSecond)} AM`,
    ]);
    const relay = batchRun(r.ingest.relay, batch);
    rows.push([
      `… acted on in the same run (actions/s)`,
      fmtRate(ht.actionsPerSecond),
      fmtRate(am.actionsPerSecond),
      `bare HTTP → gRPC relay ${fmtRate(relay.actionsPerSecond)} (accepted ${fmtRate(relay.load.alertsPerSecond)})`,
      `${fmtRatio(ht.actionsPerSecond / am.actionsPerSecond)} AM, ${fmtRatio(ht.actionsPerSecond / relay.actionsPerSecond)} relay`,
    ]);
    const htUnary = batchRun(r.ingest.hollowtreesUnary, batch);
    const relayUnary = batchRun(r.ingest.relayUnary, batch);
    rows.push([
      `… over unary calls: ingest / acted on`,
      `${fmtRate(htUnary.load.alertsPerSecond)} / ${fmtRate(htUnary.actionsPerSecond)}`,
      '',
      `bare relay over unary calls ${fmtRate(relayUnary.actionsPerSecond)} (accepted ${fmtRate(relayUnary.load.alertsPerSecond)})`,
      `stream ${fmtRatio(ht.load.alertsPerSecond / htUnary.load.alertsPerSecond)} / ${fmtRatio(ht.actionsPerSecond / htUnary.actionsPerSecond)} unary`,
    ]);
    if (r.ingest.relayTwoProcesses) {
      const two = batchRun(r.ingest.relayTwoProcesses, batch);
      rows.push([
        `… bare relay on two processes (\`node:cluster\`): ingest / acted on`,
        '',
        '',
        `${fmtRate(two.load.alertsPerSecond)} / ${fmtRate(two.actionsPerSecond)}; CPU: relays ${two.serverCpuPercent.toFixed(0)}%, one relay ${relay.serverCpuPercent.toFixed(0)}%, AM ${am.serverCpuPercent.toFixed(0)}%`,
        `${fmtRatio(two.actionsPerSecond / am.actionsPerSecond)} AM, ${fmtRatio(two.actionsPerSecond / relay.actionsPerSecond)} one relay`,
      ]);
    }
  }
  const f = r.latency.floor.latencyMs;
  const ht = r.latency.hollowtrees;
  const am = r.latency.alertmanager;
  const relay = r.latency.relay;
  for (const p of ['p50', 'p99'] as const) {
    rows.push([
      `Alert → action ${p}`,
      fmtMs(ht[p]),
      fmtMs(am[p]),
      `gRPC floor ${fmtMs(f[p])}; bare relay ${fmtMs(relay[p])}`,
      `${fmtRatio(ht[p] / f[p])} / ${fmtRatio(am[p] / f[p])} floor; ${fmtRatio(ht[p] / relay[p])} relay`,
    ]);
    const htUnary = r.latency.hollowtreesUnary;
    rows.push([`… over unary calls, ${p}`, fmtMs(htUnary[p]), '', `bare relay over unary calls ${fmtMs(r.latency.relayUnary[p])}`, `${fmtRatio(htUnary[p] / f[p])} floor`]);
    if (ht.warm && am.warm && relay.warm) {
      rows.push([
        `… ${p} once each server has handled ${ht.warmAfter?.toLocaleString('en-US')} alerts`,
        fmtMs(ht.warm[p]),
        fmtMs(am.warm[p]),
        `bare relay ${fmtMs(relay.warm[p])}`,
        `${fmtRatio(ht.warm[p] / f[p])} / ${fmtRatio(am.warm[p] / f[p])} floor; ${fmtRatio(ht.warm[p] / relay.warm[p])} relay`,
      ]);
    }
  }
  if (ht.threads && relay.threads) {
    rows.push(['… threads over the compared alerts (others: V8 compiler and GC)', threadSplitText(ht.threads.compared), '', `bare relay: ${threadSplitText(relay.threads.compared)}`, '']);
    rows.push(['… threads once warm', threadSplitText(ht.threads.warm), '', `bare relay: ${threadSplitText(relay.threads.warm)}`, '']);
  }
  rows.push([`Mass reclaim: ${r.massReclaim.alerts} instances, ${r.massReclaim.pluginDelayMs} ms plugin`, `${r.massReclaim.allCalledMs.toFixed(0)} ms`, '', '', '']);
  const cpuMs = r.massReclaim.coreCpuMs;
  if (cpuMs !== undefined) rows.push(['Mass reclaim: core CPU per alert (user + system)', `${((cpuMs * 1000) / r.massReclaim.alerts).toFixed(0)} µs`, '', '', '']);
  const threads = r.massReclaim.threads;
  if (threads) {
    rows.push(['Mass reclaim: core main thread / its other threads (parse, GC) (waited: runnable, no CPU free)', `${threadTimesText(threads.coreMain)} / ${threadTimesText(threads.coreOthers)}`, '', `bench (POSTs and plugin): ${threadTimesText(threads.benchMain)}`, '']);
  }
  const cold = r.massReclaim.afterIdle;
  if (cold) {
    const coldCpu = cold.coreCpuMs === undefined ? '' : `core CPU ${((cold.coreCpuMs * 1000) / cold.alerts).toFixed(0)} µs per alert`;
    rows.push([`… the same wave after ${(cold.idleMs / 1000).toFixed(0)} s idle (new instances)`, `${cold.allCalledMs.toFixed(0)} ms`, '', coldCpu, '']);
  }
  const rw = r.replicasWave;
  if (rw) {
    rows.push([
      `Reclaim through ${rw.replicas} replicas (Kubernetes Leases): ${rw.alerts} instances, each alert to every replica`,
      `${rw.allCalledMs.toFixed(0)} ms`,
      '',
      `${rw.pluginCalls} plugin calls; ${rw.leaseCallsPerDelivery.toFixed(2)} Lease calls per alert delivered, ${rw.leaseCallsPerInstance.toFixed(2)} per instance; ${rw.throttled ?? 0} answered 429`,
      '',
    ]);
    rows.push([
      '… the same alerts re-sent to every replica 10 s later (cooling down)',
      `${rw.resend.leaseCallsPerInstance.toFixed(2)} Lease calls per instance`,
      '',
      `${rw.resend.pluginCalls} plugin calls; Lease calls ${JSON.stringify(rw.resend.leaseCalls)}`,
      '',
    ]);
    const f = rw.followers;
    if (f) {
      rows.push([
        `… then ${f.followers} node watchers at once, each reading its notice's groups and runs at a replica, as a follow begins`,
        `${f.totalMs.toFixed(0)} ms`,
        '',
        `one watcher's reads: p50 ${f.p50Ms.toFixed(0)} ms, p99 ${f.p99Ms.toFixed(0)} ms; ${f.leaseLists} Lease list pages for all of them`,
        '',
      ]);
    }
  }
  const settle = r.memory.hollowtrees.rssSamplesMiB.length;
  for (const [when, pick] of [
    ['2 s after the fill', (m: MemoryReading) => m.loadedBytes],
    [`${settle} s later`, (m: MemoryReading) => m.settledBytes],
  ] as const) {
    const htBytes = pick(r.memory.hollowtrees);
    const amBytes = pick(r.memory.alertmanager);
    rows.push([`RSS with ${r.memory.groups.toLocaleString('en-US')} groups, ${when}`, fmtMiB(htBytes), fmtMiB(amBytes), '', `1/${(amBytes / htBytes).toFixed(1)}`]);
  }
  const main = markdownTable(['Measurement', 'Hollowtrees', `Alertmanager ${r.machine.alertmanager}`, 'Reference', 'Ratio'], rows);
  const targets = markdownTable(
    ['Target (issues 7 and 14)', 'Wanted', 'Measured', 'Result'],
    checks.map((c) => [c.name, c.target, c.measured, c.pass ? 'PASS' : 'FAIL']),
  );
  return `${main}\n\n${targets}`;
}

/** The generator's evidence that it was not the bottleneck. */
export function generatorTable(r: BenchResults): string {
  const rows: string[][] = [];
  for (const batch of INGEST_BATCHES) {
    const ceiling = r.generatorCeiling[`batch${batch}`];
    const ht = batchRun(r.ingest.hollowtrees, batch);
    const am = batchRun(r.ingest.alertmanager, batch);
    const cpu = (run: IngestRun): string =>
      `${run.load.cpuPercent.toFixed(0)}% (server ${run.serverCpuPercent.toFixed(0)}%${run.benchCpuPercent === undefined ? '' : `, sink ${run.benchCpuPercent.toFixed(0)}%`})`;
    rows.push([`batches of ${batch}`, ceiling ? `${fmtRate(ceiling.alertsPerSecond)} at ${ceiling.cpuPercent.toFixed(0)}%` : '', cpu(ht), cpu(am)]);
  }
  return markdownTable(['Load generator', 'Against a null HTTP server (rate, generator CPU)', 'Generator CPU vs Hollowtrees', 'Generator CPU vs Alertmanager'], rows);
}

/** The machine, one line. */
export function machineLine(m: MachineInfo): string {
  return `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os}, Node ${m.node}, Alertmanager ${m.alertmanager}`;
}

/** The chart's panels. */
export function chartPanels(r: BenchResults): ChartPanel[] {
  const HT = '#2f7d32';
  const AM = '#c0392b';
  const REF = '#7f8c8d';
  const panels: ChartPanel[] = [];
  for (const batch of INGEST_BATCHES) {
    panels.push({
      title: `Ingest, batches of ${batch}, 8 connections`,
      unit: 'alerts/s',
      bars: [
        { label: 'Hollowtrees', value: batchRun(r.ingest.hollowtrees, batch).load.alertsPerSecond, color: HT },
        { label: 'Alertmanager', value: batchRun(r.ingest.alertmanager, batch).load.alertsPerSecond, color: AM },
      ],
    });
  }
  panels.push({
    title: 'Alert → action latency, p50 / p99',
    unit: 'ms',
    bars: [
      { label: 'raw gRPC floor p50', value: r.latency.floor.latencyMs.p50, color: REF },
      { label: 'bare relay p50', value: r.latency.relay.p50, color: REF },
      { label: 'Hollowtrees p50', value: r.latency.hollowtrees.p50, color: HT },
      { label: 'Alertmanager p50', value: r.latency.alertmanager.p50, color: AM },
      { label: 'raw gRPC floor p99', value: r.latency.floor.latencyMs.p99, color: REF },
      { label: 'bare relay p99', value: r.latency.relay.p99, color: REF },
      { label: 'Hollowtrees p99', value: r.latency.hollowtrees.p99, color: HT },
      { label: 'Alertmanager p99', value: r.latency.alertmanager.p99, color: AM },
    ],
  });
  panels.push({
    title: `Mass reclaim: ${r.massReclaim.alerts} instances in POSTs of 100, ${r.massReclaim.pluginDelayMs} ms plugin`,
    unit: 'ms',
    bars: [
      { label: 'Hollowtrees, all called', value: r.massReclaim.allCalledMs, color: HT },
      { label: 'target', value: 1_000, color: REF },
    ],
  });
  panels.push({
    title: `RSS holding ${r.memory.groups.toLocaleString('en-US')} groups (2 s after the fill / settled)`,
    unit: 'MiB',
    bars: [
      { label: 'Hollowtrees, 2 s after', value: r.memory.hollowtrees.loadedBytes / 2 ** 20, color: HT },
      { label: 'Alertmanager, 2 s after', value: r.memory.alertmanager.loadedBytes / 2 ** 20, color: AM },
      { label: 'Hollowtrees, settled', value: r.memory.hollowtrees.settledBytes / 2 ** 20, color: HT },
      { label: 'Alertmanager, settled', value: r.memory.alertmanager.settledBytes / 2 ** 20, color: AM },
    ],
  });
  return panels;
}
