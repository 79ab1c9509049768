/**
 * The bench's `wave` section: the drill over every combination of wave size,
 * API condition and group count asked for, one fresh set of processes each.
 *
 * Environment (each a comma-separated list, defaults in brackets):
 *   BENCH_WAVE_NODES [100,1000]   BENCH_WAVE_GROUPS [1,10]
 *   BENCH_WAVE_CONDITIONS [none,latency,latency+limits]
 *   BENCH_WAVE_CONFIG [examples/config.yaml]   core's configuration
 *   BENCH_WAVE_AWS_SPOT_ARGS [--complete-lifecycle-hooks after-drain]   the AWS plugin's flags (its layout's)
 *   BENCH_WAVE_DRAIN_ARGS []      the drain plugin's flags, e.g. --max-in-flight 128
 *   BENCH_WAVE_CUTOFF_S [180]     a run still going then is cut off
 *   BENCH_WAVE_OUT [bench/wave-latest.json]    where the results are copied
 */
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WAVE_CONDITIONS, runWaveDrill, type WaveRunResult } from './drill.js';
import { waveCallsTable, waveProcessTable, waveTable } from './report.js';
import { waveScenario } from './scenario.js';

const list = (name: string, fallback: string): string[] => (process.env[name] ?? fallback).split(',').map((s) => s.trim()).filter(Boolean);

/** Runs the drills; writes `<resultsDir>/wave-<stamp>.json`, copies it to BENCH_WAVE_OUT, prints the tables. */
export async function runWaveSection(benchDir: string, resultsDir: string, stamp: string, nodeArgs: readonly string[], log: (text: string) => void): Promise<WaveRunResult[]> {
  const configFile = process.env.BENCH_WAVE_CONFIG ?? join(benchDir, '..', 'examples', 'config.yaml');
  const cutoffMs = Number(process.env.BENCH_WAVE_CUTOFF_S ?? 180) * 1000;
  const awsSpotArgs = (process.env.BENCH_WAVE_AWS_SPOT_ARGS ?? '--complete-lifecycle-hooks after-drain').split(' ').filter(Boolean);
  const drainArgs = (process.env.BENCH_WAVE_DRAIN_ARGS ?? '').split(' ').filter(Boolean);
  const results: WaveRunResult[] = [];
  for (const nodes of list('BENCH_WAVE_NODES', '100,1000').map(Number)) {
    for (const conditionName of list('BENCH_WAVE_CONDITIONS', 'none,latency,latency+limits')) {
      const condition = WAVE_CONDITIONS[conditionName];
      if (!condition) throw new Error(`BENCH_WAVE_CONDITIONS: unknown condition "${conditionName}" (known: ${Object.keys(WAVE_CONDITIONS).join(', ')})`);
      for (const groups of list('BENCH_WAVE_GROUPS', '1,10').map(Number)) {
        const result = await runWaveDrill({ scenario: waveScenario(nodes, groups), condition, configFile, cutoffMs, awsSpotArgs, drainArgs, nodeArgs });
        const m = result.measurement;
        log(
          `wave ${nodes} nodes, ${groups} group(s), ${condition.name}: runs ${result.runs.succeeded} ok / ${result.runs.failed} failed / ${result.runs.unfinished} unfinished; ` +
            `cordoned ${m.allCordonedMs?.toFixed(0) ?? `${m.nodesCordoned}/${nodes}`} ms, evictions p99 ${m.evictionsDoneMs.p99.toFixed(0)} ms, ` +
            `replacements ${m.allReplacementsMs?.toFixed(0) ?? `${m.replacementsRequested}/${nodes}`} ms, finished ${result.finishedMs?.toFixed(0) ?? 'cut off'} ms; ` +
            `load ${result.loadAverage.toFixed(1)}, alerts in ${result.alertsInMs.toFixed(0)} ms, half cordoned ${m.halfCordonedMs?.toFixed(0) ?? '—'} ms, ` +
            `${m.evictionsBeforeAllCordoned} evictions before all cordoned, CPU s to all cordoned: ` +
            Object.entries(result.processes).map(([name, p]) => `${name} ${p.cpuSecondsToCordoned?.toFixed(2) ?? '—'}`).join(', '),
        );
        results.push(result);
      }
    }
  }
  const jsonPath = join(resultsDir, `wave-${stamp}.json`);
  writeFileSync(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
  copyFileSync(jsonPath, process.env.BENCH_WAVE_OUT ?? join(benchDir, 'wave-latest.json'));
  process.stdout.write(['', 'Wave drill:', '', waveTable(results), '', waveCallsTable(results), '', waveProcessTable(results), ''].join('\n'));
  return results;
}
