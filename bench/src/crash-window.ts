/**
 * The crash window of the run-state journal (issue 12, item 8): 1,000 runs
 * whose plugin calls all answer at once, then `kill -9` of core a few ms later
 * and a restart on the same state file. A run whose success reached the
 * journal before the kill cools down; one whose success did not is resumed and
 * calls the plugin again. The fewer calls after the restart, the smaller the
 * window. A process left alive shows when the cooldowns reach the journal.
 */
import { readFileSync } from 'node:fs';
import { labelsOf, serve } from '@hollowtrees/grpcplugin';
import { pollUntil, tempDir } from '@hollowtrees/testkit';
import { alertsBody } from './alerts.js';
import { postAlerts, readMetric, startHollowtrees, type Target } from './targets.js';

/** One kill after the burst. */
export interface CrashRun {
  killAfterMs: number;
  /** Calls the plugin had answered OK before the kill. */
  answeredBeforeKill: number;
  /** Runs the restarted process resumed. */
  resumed: number;
  /** Of the answered calls, how many the restarted process made again. */
  calledAgain: number;
}

export interface CrashWindowResult {
  runs: number;
  /** From the plugin answering every call to half, 99% and all of the cooldowns written to the journal, in ms. */
  cooldownOnDiskMs: { p50: number; p99: number; all: number };
  kills: CrashRun[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A plugin that holds every call until `release()`, then answers them all at once. */
async function gatedPlugin(): Promise<{ address: string; calls: Map<string, number>; waiting: () => number; release: () => void; close: () => Promise<void> }> {
  const calls = new Map<string, number>();
  let open = false;
  let waiters: Array<() => void> = [];
  const server = await serve(
    0,
    {
      handle: async (event) => {
        const instance = labelsOf(event).instance_id ?? '';
        calls.set(instance, (calls.get(instance) ?? 0) + 1);
        if (!open) await new Promise<void>((resolve) => waiters.push(resolve));
        return { message: 'ok' };
      },
    },
    { host: '127.0.0.1', shutdownTimeoutMs: 500 },
  );
  return {
    address: `127.0.0.1:${server.port}`,
    calls,
    waiting: () => waiters.length,
    release: () => {
      open = true;
      for (const resolve of waiters.splice(0)) resolve();
    },
    close: () => server.close(),
  };
}

/** Polls the journal and says when half, 99% and all of `runs` cooldowns were in it, in ms after `t0`. */
async function cooldownsOnDisk(file: string, runs: number, t0: number): Promise<CrashWindowResult['cooldownOnDiskMs']> {
  const at: { p50?: number; p99?: number; all?: number } = {};
  while (at.all === undefined) {
    if (performance.now() - t0 > 30_000) throw new Error('cooldowns did not reach the journal within 30 s');
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // a compaction renames the file in place for a moment
    }
    const cooling = text.split('"phase":"cooling"').length - 1;
    const now = performance.now() - t0;
    if (cooling >= runs * 0.5) at.p50 ??= now;
    if (cooling >= runs * 0.99) at.p99 ??= now;
    if (cooling >= runs) at.all = now;
    await sleep(1);
  }
  return { p50: at.p50!, p99: at.p99!, all: at.all };
}

/** Posts `runs` alerts, waits until every call is held by the plugin, then lets them all answer; resolves with that moment. */
async function burst(target: Target, plugin: Awaited<ReturnType<typeof gatedPlugin>>, prefix: string, runs: number): Promise<number> {
  for (let first = 0; first < runs; first += 100) await postAlerts(target.url, alertsBody(prefix, first, Math.min(100, runs - first)));
  await pollUntil(() => plugin.waiting() >= runs, 30_000, () => `${runs} calls held (have ${plugin.waiting()})`, 5);
  const releasedAt = performance.now();
  plugin.release();
  return releasedAt;
}

export async function measureCrashWindow(runs = 1_000, killDelaysMs: readonly number[] = [30, 75]): Promise<CrashWindowResult> {
  const dir = await tempDir('bench-crash-window');
  try {
    // The window itself, on a process left alive.
    const alive = await gatedPlugin();
    const aliveFile = `${dir.path}/alive.jsonl`;
    const aliveTarget = await startHollowtrees({ pluginAddress: alive.address, stateFile: aliveFile });
    let cooldownOnDiskMs: CrashWindowResult['cooldownOnDiskMs'];
    try {
      cooldownOnDiskMs = await cooldownsOnDisk(aliveFile, runs, await burst(aliveTarget, alive, 'alive-', runs));
    } finally {
      await aliveTarget.stop();
      await alive.close();
    }

    const kills: CrashRun[] = [];
    for (const killAfterMs of killDelaysMs) {
      const stateFile = `${dir.path}/kill-${killAfterMs}.jsonl`;
      const plugin = await gatedPlugin();
      const first = await startHollowtrees({ pluginAddress: plugin.address, stateFile });
      await burst(first, plugin, `kill-${killAfterMs}-`, runs);
      await sleep(killAfterMs);
      process.kill(first.pid, 'SIGKILL');
      await first.stop();
      const answeredBeforeKill = plugin.calls.size;
      const before = new Map(plugin.calls);
      const second = await startHollowtrees({ pluginAddress: plugin.address, stateFile });
      try {
        await pollUntil(async () => (await readMetric(second.url, 'hollowtrees_runs_in_progress')) === 0 && (await readMetric(second.url, 'hollowtrees_queue_depth')) === 0, 30_000, () => 'resumed runs to finish', 20);
        await sleep(200);
        const calledAgain = [...plugin.calls].filter(([instance, count]) => count > (before.get(instance) ?? 0)).length;
        const resumed = await readMetric(second.url, 'hollowtrees_flow_runs_total');
        kills.push({ killAfterMs, answeredBeforeKill, resumed, calledAgain });
      } finally {
        await second.stop();
        await plugin.close();
      }
    }
    return { runs, cooldownOnDiskMs, kills };
  } finally {
    await dir.remove();
  }
}
