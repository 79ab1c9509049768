/**
 * The crash window of the run-state journal (issue 12, item 8): 1,000 runs
 * whose plugin calls all answer at once. On a process left alive, how long
 * each cooldown took from core having the plugin's OK to being in the journal.
 * Then `kill -9` of core during such a burst (0, 30 and 75 ms after its first
 * cooldown reached the journal) and a restart on the same state file: a run
 * whose cooldown was on disk stays done; any other is resumed and calls the
 * plugin again (whether its OK had reached core before the kill or not).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { pollUntil, tempDir } from '@hollowtrees/testkit';
import { alertBatches } from './alerts.js';
import { gatedPlugin, type GatedPlugin } from './gated-plugin.js';
import { summarize } from './stats.js';
import { postAlerts, readMetric, startHollowtrees, type Target } from './targets.js';

/** One kill during the burst. */
export interface CrashRun {
  /** The kill came this long after the first cooldown of the burst reached the journal. */
  killAfterFirstCooldownMs: number;
  /** Cooldowns in the journal when the process was killed. */
  cooldownsOnDisk: number;
  /** Runs the restarted process finished (those without a cooldown on disk, resumed). */
  resumed: number;
  /** Instances whose plugin call the restarted process made again. */
  calledAgain: number;
}

export interface CrashWindowResult {
  runs: number;
  /** Per run, from core having the plugin's OK to the cooldown being in the journal, in ms. */
  windowMs: { p50: number; p99: number; max: number };
  kills: CrashRun[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Follows a journal as it is appended to. For every cooldown record it notes
 * how long after the record's `since` (the moment core had the plugin's OK) the
 * record was in the file: the window in which a crash would lose it. Reads only
 * what was appended since the last look, so it does not hold up the plugin
 * answering the calls, which lives in this process.
 */
class JournalFollower {
  readonly windowsMs: number[] = [];
  private readonly fd: number;
  private position = 0;
  private partial = '';

  constructor(file: string) {
    this.fd = openSync(file, 'r');
  }

  /** Reads what is new; returns how many cooldown records the file holds so far. */
  poll(): number {
    const buffer = Buffer.alloc(1 << 20);
    for (;;) {
      const read = readSync(this.fd, buffer, 0, buffer.length, this.position);
      if (read === 0) break;
      this.position += read;
      const lines = (this.partial + buffer.toString('utf8', 0, read)).split('\n');
      this.partial = lines.pop()!;
      const now = Date.now();
      for (const line of lines) {
        if (!line.includes('"phase":"cooling"')) continue;
        this.windowsMs.push(now - (JSON.parse(line) as { since: number }).since);
      }
    }
    return this.windowsMs.length;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Polls `follower` every millisecond until `done` says so. */
async function follow(follower: JournalFollower, done: (cooling: number) => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 30_000;
  while (!done(follower.poll())) {
    if (performance.now() > deadline) throw new Error(`${what}: not within 30 s (${follower.windowsMs.length} cooldowns in the journal)`);
    await sleep(1);
  }
}

/** Posts `runs` alerts, waits until every call is held by the plugin, then lets them all answer. */
async function burst(target: Target, plugin: GatedPlugin, prefix: string, runs: number): Promise<void> {
  for (const body of alertBatches(prefix, runs, 100)) await postAlerts(target.url, body);
  await pollUntil(() => plugin.waiting() >= runs, 30_000, () => `${runs} calls held (have ${plugin.waiting()})`, 5);
  plugin.release();
}

export async function measureCrashWindow(runs = 1_000, killDelaysMs: readonly number[] = [0, 30, 75]): Promise<CrashWindowResult> {
  const dir = await tempDir('bench-crash-window');
  try {
    // The window itself, on a process left alive.
    const alive = await gatedPlugin();
    const aliveFile = `${dir.path}/alive.jsonl`;
    const aliveTarget = await startHollowtrees({ pluginAddress: alive.address, stateFile: aliveFile });
    let windowMs: CrashWindowResult['windowMs'];
    try {
      const follower = new JournalFollower(aliveFile);
      await burst(aliveTarget, alive, 'alive-', runs);
      await follow(follower, (cooling) => cooling >= runs, 'every cooldown in the journal');
      follower.close();
      const s = summarize(follower.windowsMs);
      windowMs = { p50: s.p50, p99: s.p99, max: s.max };
    } finally {
      await aliveTarget.stop();
      await alive.close();
    }

    const kills: CrashRun[] = [];
    for (const killAfterMs of killDelaysMs) {
      const stateFile = `${dir.path}/kill-${killAfterMs}.jsonl`;
      const plugin = await gatedPlugin();
      const first = await startHollowtrees({ pluginAddress: plugin.address, stateFile });
      const follower = new JournalFollower(stateFile);
      await burst(first, plugin, `kill-${killAfterMs}-`, runs);
      await follow(follower, (cooling) => cooling > 0, 'a first cooldown');
      await sleep(killAfterMs);
      process.kill(first.pid, 'SIGKILL');
      await first.stop();
      const cooldownsOnDisk = follower.poll();
      follower.close();
      const before = new Map(plugin.calls);
      const second = await startHollowtrees({ pluginAddress: plugin.address, stateFile });
      try {
        await pollUntil(async () => (await readMetric(second.url, 'hollowtrees_runs_in_progress')) === 0 && (await readMetric(second.url, 'hollowtrees_queue_depth')) === 0, 30_000, () => 'resumed runs to finish', 20);
        await sleep(200);
        const calledAgain = [...plugin.calls].filter(([instance, count]) => count > (before.get(instance) ?? 0)).length;
        const resumed = await readMetric(second.url, 'hollowtrees_flow_runs_total');
        kills.push({ killAfterFirstCooldownMs: killAfterMs, cooldownsOnDisk, resumed, calledAgain });
      } finally {
        await second.stop();
        await plugin.close();
      }
    }
    return { runs, windowMs, kills };
  } finally {
    await dir.remove();
  }
}
