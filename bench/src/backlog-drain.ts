/**
 * How long a backlog of queued runs takes to drain with the run-state journal: `runs` alerts
 * accepted while the plugin holds the first `concurrency` calls, then released. Each run is on
 * disk before its first plugin call (its claim) and again with its cooldown; since journal
 * format 5 its claim writes a short `started` line, which costs a group-committed sync of its own
 * where the claim's flush used to find nothing to write. The syncs are read from
 * `hollowtrees_state_write_seconds_count` (one per group commit).
 *
 *   node bench/dist/backlog-drain.js [runs] [concurrency...]   e.g. 1000 1 10 100
 */
import { pollUntil, tempDir } from '@hollowtrees/testkit';
import { alertBatches } from './alerts.js';
import { gatedPlugin } from './gated-plugin.js';
import { postAlerts, readMetric, startHollowtrees } from './targets.js';

/** One drain of a backlog. */
export interface BacklogDrain {
  runs: number;
  concurrency: number;
  /** From the plugin's release to every run succeeded, in ms. */
  drainMs: number;
  /** Group-committed journal syncs during the drain. */
  syncs: number;
}

const SYNCS = 'hollowtrees_state_write_seconds_count';

/** Accepts `runs` alerts into a flow of `concurrency` with a journal, then times the drain of the backlog. */
export async function measureBacklogDrain(runs: number, concurrency: number): Promise<BacklogDrain> {
  const dir = await tempDir('bench-backlog');
  const plugin = await gatedPlugin();
  const target = await startHollowtrees({ pluginAddress: plugin.address, stateFile: `${dir.path}/state.jsonl`, concurrency });
  try {
    for (const body of alertBatches(`backlog-${concurrency}-`, runs, 100)) await postAlerts(target.url, body);
    await pollUntil(() => plugin.waiting() >= Math.min(runs, concurrency), 30_000, () => `${concurrency} calls held (have ${plugin.waiting()})`, 5);
    const syncsBefore = await readMetric(target.url, SYNCS);
    const start = performance.now();
    plugin.release();
    await pollUntil(async () => (await readMetric(target.url, 'hollowtrees_flow_runs_total', { outcome: 'succeeded' })) >= runs, 120_000, () => `${runs} runs succeeded`, 10);
    const drainMs = performance.now() - start;
    return { runs, concurrency, drainMs, syncs: (await readMetric(target.url, SYNCS)) - syncsBefore };
  } finally {
    await target.stop();
    await plugin.close();
    await dir.remove();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [runs = 1_000, ...concurrencies] = process.argv.slice(2).map(Number);
  for (const concurrency of concurrencies.length > 0 ? concurrencies : [1, 10, 100]) {
    const { drainMs, syncs } = await measureBacklogDrain(runs, concurrency);
    process.stdout.write(`${runs} runs, concurrency ${concurrency}: drained in ${drainMs.toFixed(0)} ms, ${syncs} journal syncs (${(drainMs / runs).toFixed(2)} ms a run)\n`);
  }
}
