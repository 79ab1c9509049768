/** The wave drill's tables (Markdown), as printed and pasted into bench/README.md. */
import { markdownTable } from '../report.js';
import type { WaveRunResult } from './drill.js';

const seconds = (ms: number | undefined, missing = '—'): string => (ms === undefined || Number.isNaN(ms) ? missing : `${(ms / 1000).toFixed(1)} s`);
const conditionLabel = (c: string): string =>
  ({ none: 'none', latency: '20 ms kube / 100 ms AWS', 'latency+limits': '20 ms kube / 100 ms AWS, rate limits' })[c] ?? c;
const runLabel = (r: WaveRunResult): string => `${r.nodes.toLocaleString('en-US')}, ${r.groups === 1 ? '1 group' : `${r.groups} groups`}, ${conditionLabel(r.condition)}`;

/** One row per run: the issue's table, plus the run's end. */
export function waveTable(results: readonly WaveRunResult[]): string {
  return markdownTable(
    ['Nodes, groups, API', 'Runs ok / failed', 'All cordoned', 'Evictions done per node p50 / p99 / max', 'All replacements requested', 'All runs finished'],
    results.map((r) => {
      const m = r.measurement;
      const failed = r.runs.failed + r.runs.interrupted + r.runs.unfinished;
      return [
        runLabel(r),
        `${r.runs.succeeded.toLocaleString('en-US')} / ${failed.toLocaleString('en-US')}${r.runs.unfinished > 0 ? ` (${r.runs.unfinished} unfinished)` : ''}`,
        m.allCordonedMs === undefined ? `${m.nodesCordoned} of ${r.nodes}` : seconds(m.allCordonedMs),
        `${seconds(m.evictionsDoneMs.p50)} / ${seconds(m.evictionsDoneMs.p99)} / ${seconds(m.evictionsDoneMs.max)}${m.podsLeft > 0 ? ` (${m.podsLeft} pods left)` : ''}`,
        m.allReplacementsMs === undefined ? `${m.replacementsRequested} of ${r.nodes}` : seconds(m.allReplacementsMs),
        seconds(r.finishedMs, 'cut off'),
      ];
    }),
  );
}

/** API calls per reclaimed node by verb, one column per run. */
export function waveCallsTable(results: readonly WaveRunResult[]): string {
  const verbs = [...new Set(results.flatMap((r) => [...Object.keys(r.measurement.kubeCallsPerNode).map((v) => `kube: ${v}`), ...Object.keys(r.measurement.awsCallsPerNode).map((v) => `AWS: ${v}`)]))].sort();
  const value = (r: WaveRunResult, verb: string): number | undefined =>
    verb.startsWith('kube: ') ? r.measurement.kubeCallsPerNode[verb.slice(6)] : r.measurement.awsCallsPerNode[verb.slice(5)];
  return markdownTable(
    ['Calls per node', ...results.map(runLabel)],
    verbs.map((verb) => [verb, ...results.map((r) => String(value(r, verb) ?? ''))]),
  );
}

/** CPU (seconds until all cordoned, % of one core over the run) and peak RSS of each process, one column per run. */
export function waveProcessTable(results: readonly WaveRunResult[]): string {
  const names = [...new Set(results.flatMap((r) => Object.keys(r.processes)))];
  return markdownTable(
    ['CPU s to all cordoned / CPU % over the run / peak RSS MiB', ...results.map(runLabel)],
    names.map((name) => [
      name,
      ...results.map((r) => {
        const p = r.processes[name];
        return p ? `${p.cpuSecondsToCordoned?.toFixed(2) ?? '—'} s / ${p.cpuPercent.toFixed(0)}% / ${p.peakRssMiB.toFixed(0)}` : '';
      }),
    ]),
  );
}
