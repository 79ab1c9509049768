/**
 * `pnpm bench`: Hollowtrees side by side with Prometheus Alertmanager and the
 * raw gRPC floor, on loopback. Prints a table and writes JSON and an SVG chart
 * into bench/results/, copied to bench/latest.{json,svg}.
 *
 * Environment:
 *   BENCH_ONLY=ingest,latency,reclaim,replicas,memory,crash,wave   run only some sections (results are then partial)
 *   BENCH_WAVE_*                                the wave drill's matrix (see wave/section.ts)
 *   BENCH_CPU_PROF=<dir>                      run Hollowtrees (and every process of the wave drill) under `node --cpu-prof` into <dir>
 *   BENCH_HT_ARGS='<node flags>'              more `node` flags for Hollowtrees and the bare relay (not the wave drill), e.g. to try a V8 flag
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pollUntil } from '@hollowtrees/testkit';
import { alertBatches, alertJson, alertsBody } from './alerts.js';
import { measureCrashWindow } from './crash-window.js';
import { measureGrpcFloor } from './grpc-floor.js';
import { runLoad, type LoadMark, type LoadResult } from './loadgen.js';
import { describeMachine, processCpuSeconds, processTreeCpuSeconds, threadSplitText, threadTimes, threadTimesBetween, threadTimesText, type ThreadSplit } from './machine.js';
import { startNullServer } from './null-server.js';
import { startRelay } from './relay.js';
import { INGEST_BATCHES, chartPanels, checkTargets, fmtMiB, generatorTable, machineLine, resultsTable, type BenchResults, type IngestRun, type LatencySummary, type MemoryReading, type ReclaimWave } from './report.js';
import { startPluginSink, startWebhookSink, type Sink } from './sinks.js';
import { summarize, type Summary } from './stats.js';
import { renderBarChart } from './svg-chart.js';
import { postAlerts, readMetric, startAlertmanager, startHollowtrees, type Target } from './targets.js';
import { runWaveSection } from './wave/section.js';
import { runReplicasWave } from './replicas-wave.js';

const BENCH_DIR = new URL('..', import.meta.url).pathname;
const CONNECTIONS = 8;
const INGEST_WARMUP_MS = 1_000;
const INGEST_MS = 5_000;
const LATENCY_SAMPLES = 2_000;
const LATENCY_WARMUP = 200;
/** Alerts each target has handled before its warm latencies are taken: as many as before the reclaim wave, for the same reason. */
const LATENCY_WARM_AFTER = 3_000;
const RECLAIM_ALERTS = 10_000;
/** Alerts per POST of the reclaim wave: Prometheus sends a wave in batches, one after another. */
const RECLAIM_BATCH = 100;
const RECLAIM_DELAY_MS = 50;
/** The quiet spell before the second wave: past the parse thread's heap collection (`IDLE_COLLECT_MS`, 5 s) and the 30 s idle stop it had until 2026-12-04. */
const RECLAIM_IDLE_MS = 31_000;
/**
 * Alerts a Hollowtrees has handled before the reclaim wave. V8 optimises the hot path (zod's
 * parse of an alert above all) only after a few thousand; a Hollowtrees that has been up a
 * while has seen that many (Prometheus re-sends every firing alert each evaluation). With 100,
 * the first wave after start, the wave takes about 40% longer (see bench/README.md).
 */
const RECLAIM_WARMUP_ALERTS = 3_000;
const MEMORY_GROUPS = 100_000;
const MEMORY_BATCH = 1_000;
/** How long RSS is followed after a fill: V8 and Go return freed memory lazily, so the first reading holds garbage. */
const MEMORY_SETTLE_MS = 90_000;

const only = new Set((process.env.BENCH_ONLY ?? 'ingest,latency,reclaim,replicas,memory,crash,wave').split(','));
const cpuProfDir = process.env.BENCH_CPU_PROF;
const htNodeArgs = [...(cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : []), ...(process.env.BENCH_HT_ARGS ? process.env.BENCH_HT_ARGS.split(' ') : [])];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One reclaim wave: {@link RECLAIM_ALERTS} new instances in POSTs of {@link RECLAIM_BATCH}, one after another, timed to the last plugin call and until every run finished. */
async function reclaimWave(ht: { url: string; pid: number }, plugin: Sink, prefix: string): Promise<Required<ReclaimWave>> {
  const base = plugin.received;
  let lastEntry = 0;
  plugin.onEntry((instance, at) => {
    if (instance.startsWith(prefix)) lastEntry = at;
  });
  const bodies = alertBatches(prefix, RECLAIM_ALERTS, RECLAIM_BATCH);
  const cpuBefore = processCpuSeconds(ht.pid);
  const coreThreadsBefore = threadTimes(ht.pid);
  const benchThreadsBefore = threadTimes(process.pid);
  const t0 = performance.now();
  for (const body of bodies) await postAlerts(ht.url, body);
  const postAnsweredMs = performance.now() - t0;
  await pollUntil(() => plugin.received - base >= RECLAIM_ALERTS, 30_000, () => `all ${prefix} runs to call the plugin`, 1);
  const allCalledMs = lastEntry - t0;
  // Read before the metrics polls below, which cost CPU of their own.
  const coreCpuMs = (processCpuSeconds(ht.pid) - cpuBefore) * 1000;
  const core = threadTimesBetween(ht.pid, coreThreadsBefore, threadTimes(ht.pid));
  const bench = threadTimesBetween(process.pid, benchThreadsBefore, threadTimes(process.pid));
  await pollUntil(async () => (await readMetric(ht.url, 'hollowtrees_runs_in_progress')) === 0, 30_000, () => `all ${prefix} runs to finish`, 5);
  const allFinishedMs = performance.now() - t0;
  plugin.onEntry(undefined);
  return { alerts: RECLAIM_ALERTS, pluginDelayMs: RECLAIM_DELAY_MS, posts: bodies.length, postAnsweredMs, allCalledMs, allFinishedMs, coreCpuMs, threads: { coreMain: core.main, coreOthers: core.others, benchMain: bench.main } };
}

function reclaimWaveText(w: Required<ReclaimWave>): string {
  return (
    `last of ${w.posts} POSTs answered in ${w.postAnsweredMs.toFixed(0)} ms, all ${w.alerts} called in ${w.allCalledMs.toFixed(0)} ms, all finished by ${w.allFinishedMs.toFixed(0)} ms; core used ${w.coreCpuMs.toFixed(0)} ms of CPU (${((w.coreCpuMs * 1000) / w.alerts).toFixed(0)} µs per alert); ` +
    `core's main thread ${threadTimesText(w.threads.coreMain)}, its other threads ${threadTimesText(w.threads.coreOthers)}; the bench's (POSTs and plugin) ${threadTimesText(w.threads.benchMain)}`
  );
}
const log = (text: string): void => void process.stderr.write(`[bench] ${text}\n`);

async function generatorCeiling(): Promise<Record<string, LoadResult>> {
  const server = await startNullServer();
  const out: Record<string, LoadResult> = {};
  try {
    for (const batch of INGEST_BATCHES) {
      out[`batch${batch}`] = await runLoad({ url: `${server.url}/api/v2/alerts`, connections: CONNECTIONS, batch, warmupMs: 500, durationMs: 3_000, prefix: `null-${batch}-` });
      log(`null server, batch ${batch}: ${Math.round(out[`batch${batch}`]!.alertsPerSecond)} alerts/s, generator CPU ${out[`batch${batch}`]!.cpuPercent.toFixed(0)}%`);
    }
  } finally {
    server.close();
  }
  return out;
}

/** Starts a server under test together with the sink it acts into. */
type Start = () => Promise<{ target: Target; sink: Sink }>;

/** Starts a fresh target and its sink, hands both to `use`, and stops both whatever happened. */
async function withTarget<T>(start: Start, use: (target: Target, sink: Sink) => Promise<T>): Promise<T> {
  const { target, sink } = await start();
  try {
    return await use(target, sink);
  } finally {
    await target.stop();
    await sink.close();
  }
}

/** Hollowtrees' CLI into the bench's gRPC plugin (`delayMs` per call). */
const hollowtreesIntoPlugin =
  (options: { delayMs?: number; nodeArgs?: string[]; transport?: 'stream' | 'unary' } = {}): Start =>
  async () => {
    const sink = await startPluginSink({ delayMs: options.delayMs ?? 0 });
    return { sink, target: await startHollowtrees({ pluginAddress: sink.address, nodeArgs: options.nodeArgs ?? [], ...(options.transport ? { transport: options.transport } : {}) }) };
  };

/** The bare relay (on `processes` processes) into the bench's gRPC plugin, over `transport`. */
const relayIntoPlugin =
  (transport: 'stream' | 'unary', processes = 1): Start =>
  async () => {
    const sink = await startPluginSink();
    return { sink, target: await startRelay(sink.address, transport, htNodeArgs, processes) };
  };

/** Alertmanager into the bench's webhook receiver. */
const alertmanagerIntoWebhook: Start = async () => {
  const sink = await startWebhookSink();
  return { sink, target: await startAlertmanager(sink.address) };
};

async function ingestAgainst(start: Start, label: string): Promise<IngestRun[]> {
  const runs: IngestRun[] = [];
  for (const batch of INGEST_BATCHES) {
    await withTarget(start, async (target, sink) => {
      const cpuBefore = processTreeCpuSeconds(target.pid);
      const benchCpuBefore = process.cpuUsage();
      const wallBefore = performance.now();
      // The actions counted where the accepted rate is: inside the generator's measured window.
      const marks = new Map<LoadMark, { at: number; actions: number }>();
      const load = await runLoad({ url: `${target.url}/api/v2/alerts`, connections: CONNECTIONS, batch, warmupMs: INGEST_WARMUP_MS, durationMs: INGEST_MS, prefix: `i-${batch}-` }, (mark) =>
        marks.set(mark, { at: performance.now(), actions: sink.received }),
      );
      const wallSeconds = (performance.now() - wallBefore) / 1000;
      const serverCpuPercent = ((processTreeCpuSeconds(target.pid) - cpuBefore) / wallSeconds) * 100;
      const benchCpu = process.cpuUsage(benchCpuBefore);
      const benchCpuPercent = ((benchCpu.user + benchCpu.system) / 1e6 / wallSeconds) * 100;
      const actionsDelivered = sink.received;
      const [opened, closed] = [marks.get('window-start')!, marks.get('window-end')!];
      const actionsPerSecond = (closed.actions - opened.actions) / ((closed.at - opened.at) / 1000);
      const wholeRunPerSecond = actionsDelivered / wallSeconds;
      runs.push({ batch, load, serverCpuPercent, benchCpuPercent, actionsDelivered, actionsPerSecond, wholeRunPerSecond });
      log(`${label} ingest batch ${batch}: ${Math.round(load.alertsPerSecond)} alerts/s (${load.errors} errors), generator CPU ${load.cpuPercent.toFixed(0)}%, server CPU ${serverCpuPercent.toFixed(0)}%, the bench's (sink) ${benchCpuPercent.toFixed(0)}%, actions delivered ${actionsDelivered}: ${Math.round(actionsPerSecond)}/s in the measured window, ${Math.round(wholeRunPerSecond)}/s over the run with its warm-up`);
    });
  }
  return runs;
}

/** Posts `count` alerts one at a time, numbered from `from`; times each from POST start to the sink's handler entered for it. */
async function timeAlerts(target: Target, sink: Sink, from: number, count: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = from; i < from + count; i++) {
    const id = `lat-${i}`;
    let timer: NodeJS.Timeout | undefined;
    const entered = new Promise<number>((resolve, reject) => {
      sink.onEntry((instance, at) => instance === id && resolve(at));
      timer = setTimeout(() => reject(new Error(`${target.name}: no action for ${id} within 5 s`)), 5_000);
    });
    const body = `[${alertJson(id)}]`;
    const t0 = performance.now();
    await postAlerts(target.url, body);
    const at = await entered;
    clearTimeout(timer);
    latencies.push(at - t0);
  }
  sink.onEntry(undefined);
  return latencies;
}

/**
 * Latencies after a short warm-up (the compared figures), then `warm`: the same
 * server timed again once it has handled {@link LATENCY_WARM_AFTER} alerts; with
 * what the server's threads did over each (a cold Node process compiles as it goes).
 */
async function latencyAgainst(target: Target, sink: Sink): Promise<LatencySummary> {
  await timeAlerts(target, sink, 0, LATENCY_WARMUP);
  const timed = async (from: number): Promise<{ latencies: number[]; threads: ThreadSplit }> => {
    const before = threadTimes(target.pid);
    const latencies = await timeAlerts(target, sink, from, LATENCY_SAMPLES);
    return { latencies, threads: threadTimesBetween(target.pid, before, threadTimes(target.pid)) };
  };
  const first = await timed(LATENCY_WARMUP);
  const seen = LATENCY_WARMUP + LATENCY_SAMPLES;
  const filler = Math.max(0, LATENCY_WARM_AFTER - seen);
  await timeAlerts(target, sink, seen, filler);
  const warm = await timed(seen + filler);
  return { ...summarize(first.latencies), warm: summarize(warm.latencies), warmAfter: LATENCY_WARM_AFTER, threads: { compared: first.threads, warm: warm.threads } };
}

function latencyLine(s: LatencySummary): string {
  const ms = (x: Summary): string => `p50 ${x.p50.toFixed(3)} ms, p99 ${x.p99.toFixed(3)} ms`;
  const threads = (t: ThreadSplit | undefined): string => (t ? ` (${threadSplitText(t)})` : '');
  if (!s.warm) return ms(s);
  return `${ms(s)}${threads(s.threads?.compared)}; after ${s.warmAfter} alerts ${ms(s.warm)}${threads(s.threads?.warm)}`;
}

async function main(): Promise<void> {
  const wallStart = performance.now();
  const machine = describeMachine();
  log(machineLine(machine));
  const results: Partial<BenchResults> = { startedAt: new Date().toISOString(), machine };

  if (only.has('ingest')) {
    results.generatorCeiling = await generatorCeiling();
    const hollowtrees = await ingestAgainst(hollowtreesIntoPlugin({ nodeArgs: htNodeArgs }), 'Hollowtrees');
    const hollowtreesUnary = await ingestAgainst(hollowtreesIntoPlugin({ nodeArgs: htNodeArgs, transport: 'unary' }), 'Hollowtrees over unary calls');
    const relay = await ingestAgainst(relayIntoPlugin('stream'), 'Bare HTTP → gRPC relay');
    const relayUnary = await ingestAgainst(relayIntoPlugin('unary'), 'Bare HTTP → gRPC relay over unary calls');
    const relayTwoProcesses = await ingestAgainst(relayIntoPlugin('stream', 2), 'Bare HTTP → gRPC relay, two processes');
    const alertmanager = await ingestAgainst(alertmanagerIntoWebhook, 'Alertmanager');
    results.ingest = { hollowtrees, hollowtreesUnary, relay, relayUnary, relayTwoProcesses, alertmanager };
  }

  if (only.has('latency')) {
    const floor = await measureGrpcFloor(5_000, 1_000);
    log(`gRPC floor: p50 ${floor.latencyMs.p50.toFixed(3)} ms, p99 ${floor.latencyMs.p99.toFixed(3)} ms, ${Math.round(floor.callsPerSecond)} calls/s with 64 in flight`);
    const hollowtrees = await withTarget(hollowtreesIntoPlugin({ nodeArgs: htNodeArgs }), (ht, plugin) => latencyAgainst(ht, plugin));
    log(`Hollowtrees alert → plugin: ${latencyLine(hollowtrees)}`);
    const hollowtreesUnary = await withTarget(hollowtreesIntoPlugin({ nodeArgs: htNodeArgs, transport: 'unary' }), (ht, plugin) => latencyAgainst(ht, plugin));
    log(`Hollowtrees over unary calls alert → plugin: ${latencyLine(hollowtreesUnary)}`);
    const relay = await withTarget(relayIntoPlugin('stream'), (r, plugin) => latencyAgainst(r, plugin));
    log(`Bare HTTP → gRPC relay alert → plugin: ${latencyLine(relay)}`);
    const relayUnary = await withTarget(relayIntoPlugin('unary'), (r, plugin) => latencyAgainst(r, plugin));
    log(`Bare HTTP → gRPC relay over unary calls alert → plugin: ${latencyLine(relayUnary)}`);
    const alertmanager = await withTarget(alertmanagerIntoWebhook, (am, webhook) => latencyAgainst(am, webhook));
    log(`Alertmanager alert → webhook: ${latencyLine(alertmanager)}`);
    results.latency = { floor, hollowtrees, hollowtreesUnary, relay, relayUnary, alertmanager };
  }

  if (only.has('reclaim')) {
    await withTarget(hollowtreesIntoPlugin({ delayMs: RECLAIM_DELAY_MS, nodeArgs: htNodeArgs }), async (ht, plugin) => {
      // Warm the process and the plugin channel as a running Hollowtrees would be.
      for (const body of alertBatches('warm-', RECLAIM_WARMUP_ALERTS, RECLAIM_BATCH)) await postAlerts(ht.url, body);
      await pollUntil(() => plugin.received >= RECLAIM_WARMUP_ALERTS, 30_000, () => 'warm-up runs', 20);
      await sleep(300);
      const warm = await reclaimWave(ht, plugin, 'reclaim-');
      log(`mass reclaim: ${reclaimWaveText(warm)}`);
      // A wave usually comes after a quiet spell: long enough for the VM to cool the processes' memory.
      await sleep(RECLAIM_IDLE_MS);
      const afterIdle = await reclaimWave(ht, plugin, 'cold-');
      log(`mass reclaim after ${RECLAIM_IDLE_MS / 1000} s idle: ${reclaimWaveText(afterIdle)}`);
      results.massReclaim = { ...warm, afterIdle: { ...afterIdle, idleMs: RECLAIM_IDLE_MS } };
    });
  }

  if (only.has('replicas')) {
    const rw = await runReplicasWave(htNodeArgs);
    results.replicasWave = rw;
    log(
      `reclaim through ${rw.replicas} replicas on Kubernetes Leases: all ${rw.alerts} called in ${rw.allCalledMs.toFixed(0)} ms, ${rw.pluginCalls} plugin calls, ${rw.throttled} Lease calls answered 429, ` +
        `Lease calls ${JSON.stringify(rw.leaseCalls)} (${rw.leaseCallsPerDelivery.toFixed(2)} per alert delivered, ${rw.leaseCallsPerInstance.toFixed(2)} per instance); ` +
        `re-sent 10 s later: Lease calls ${JSON.stringify(rw.resend.leaseCalls)} (${rw.resend.leaseCallsPerInstance.toFixed(2)} per instance), ${rw.resend.pluginCalls} plugin calls` +
        (rw.followers ? `; ${rw.followers.followers} watchers' first reads: all answered in ${rw.followers.totalMs.toFixed(0)} ms, one watcher's p50 ${rw.followers.p50Ms.toFixed(0)} ms, p99 ${rw.followers.p99Ms.toFixed(0)} ms, ${rw.followers.leaseLists} Lease list pages` : ''),
    );
  }

  if (only.has('memory')) {
    /**
     * Posts MEMORY_GROUPS distinct alerts in batches. Paced (the default), each
     * batch waits until the target has acted on the previous one (plugin calls,
     * webhook notifications), so what is measured is the memory of holding the
     * groups, not of a backlog. Both targets are paced the same way.
     */
    const fill = async (target: Target, sink: Sink, prefix: string, paced: boolean): Promise<number> => {
      const started = performance.now();
      const base = sink.received;
      for (let first = 0; first < MEMORY_GROUPS; first += MEMORY_BATCH) {
        // Unpaced, acceptance runs ahead of the plugin calls until the flow's queueBytes answers 503.
        await postAlerts(target.url, alertsBody(prefix, first, MEMORY_BATCH), { resendOn503: !paced });
        if (paced) await pollUntil(() => sink.received - base >= first + MEMORY_BATCH, 60_000, () => `${target.name} to act on ${first + MEMORY_BATCH} alerts`, 2);
      }
      return (performance.now() - started) / 1000;
    };
    /** RSS 2 s after the fill, then once a second for {@link MEMORY_SETTLE_MS}: the settled figure is the last reading. */
    const followRss = async (target: Target): Promise<Omit<MemoryReading, 'idleBytes' | 'fillSeconds'>> => {
      await sleep(2_000);
      const loadedBytes = target.rss();
      const rssSamplesMiB: number[] = [];
      for (let waited = 0; waited < MEMORY_SETTLE_MS; waited += 1_000) {
        await sleep(1_000);
        rssSamplesMiB.push(Math.round(target.rss() / 2 ** 20));
      }
      return { loadedBytes, settledBytes: target.rss(), rssSamplesMiB };
    };
    const measureHollowtrees = (paced: boolean): Promise<MemoryReading> =>
      withTarget(hollowtreesIntoPlugin(), async (ht, plugin) => {
        const idleBytes = ht.rss();
        const fillSeconds = await fill(ht, plugin, 'mem-', paced);
        await pollUntil(async () => (await readMetric(ht.url, 'hollowtrees_groups_cooling_down')) >= MEMORY_GROUPS, 180_000, () => `${MEMORY_GROUPS} groups cooling down`, 200);
        const result = { idleBytes, fillSeconds, ...(await followRss(ht)) };
        if ((await readMetric(ht.url, 'hollowtrees_groups_cooling_down')) < MEMORY_GROUPS) throw new Error('Hollowtrees: groups stopped cooling down while RSS was followed');
        log(`Hollowtrees RSS (${paced ? 'paced' : 'burst'} fill): idle ${fmtMiB(idleBytes)}, with ${MEMORY_GROUPS} groups cooling ${fmtMiB(result.loadedBytes)} just after, ${fmtMiB(result.settledBytes)} ${MEMORY_SETTLE_MS / 1000} s later (filled in ${fillSeconds.toFixed(1)} s)`);
        return result;
      });
    const hollowtrees = await measureHollowtrees(true);
    const hollowtreesBurst = await measureHollowtrees(false);
    const alertmanager = await withTarget(alertmanagerIntoWebhook, async (am, webhook) => {
      const idleBytes = am.rss();
      const fillSeconds = await fill(am, webhook, 'mem-', true);
      const reading = { idleBytes, fillSeconds, ...(await followRss(am)), webhookAlerts: webhook.received };
      log(`Alertmanager RSS (paced fill): idle ${fmtMiB(idleBytes)}, with ${MEMORY_GROUPS} groups ${fmtMiB(reading.loadedBytes)} just after, ${fmtMiB(reading.settledBytes)} ${MEMORY_SETTLE_MS / 1000} s later (filled in ${fillSeconds.toFixed(1)} s, ${webhook.received} notified)`);
      return reading;
    });
    results.memory = { groups: MEMORY_GROUPS, hollowtrees, hollowtreesBurst, alertmanager };
  }

  if (only.has('crash')) {
    const crash = await measureCrashWindow();
    results.crashWindow = crash;
    const { p50, p99, max } = crash.windowMs;
    log(`run-state journal, ${crash.runs} runs answered at once: plugin's OK in core → cooldown in the journal p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms, max ${max.toFixed(0)} ms`);
    for (const k of crash.kills) log(`kill -9 ${k.killAfterFirstCooldownMs} ms after the burst's first cooldown reached the journal: ${k.cooldownsOnDisk} cooldowns on disk, ${k.resumed} runs resumed after the restart, ${k.calledAgain} called again`);
  }

  const resultsDir = join(BENCH_DIR, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = results.startedAt!.replace(/[:.]/g, '-');
  if (only.has('wave')) results.wave = await runWaveSection(BENCH_DIR, resultsDir, stamp, htNodeArgs, log);

  results.wallSeconds = (performance.now() - wallStart) / 1000;
  const jsonPath = join(resultsDir, `bench-${stamp}.json`);
  writeFileSync(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
  if (!(results.ingest && results.latency && results.massReclaim && results.memory)) {
    log(`partial run (BENCH_ONLY=${[...only].join(',')}): wrote ${jsonPath}; no table, chart or latest.*`);
    return;
  }
  const full = results as BenchResults;
  const svg = renderBarChart('Hollowtrees vs Prometheus Alertmanager, loopback', chartPanels(full), machineLine(machine));
  const svgPath = join(resultsDir, `bench-${stamp}.svg`);
  writeFileSync(svgPath, svg);
  copyFileSync(jsonPath, join(BENCH_DIR, 'latest.json'));
  copyFileSync(svgPath, join(BENCH_DIR, 'latest.svg'));

  const checks = checkTargets(full);
  const out = [
    '',
    `Machine: ${machineLine(machine)}`,
    '',
    resultsTable(full, checks),
    '',
    generatorTable(full),
    '',
    `Bench wall time: ${full.wallSeconds.toFixed(0)} s. Wrote ${jsonPath}, ${svgPath}, bench/latest.json, bench/latest.svg.`,
    '',
  ].join('\n');
  process.stdout.write(out);
  if (checks.some((c) => !c.pass)) process.stdout.write('Some targets are missed (see FAIL above).\n');
}

main().then(
  () => setTimeout(() => process.exit(0), 100).unref(),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
