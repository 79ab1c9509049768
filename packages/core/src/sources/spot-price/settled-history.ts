import type { PriceSample } from './price-crossings.js';
import { poolKey, type SpotPool } from './spot-pools.js';

/** EC2 keeps 90 days of Spot price history: no read goes further back. */
export const HISTORY_KEPT_MS = 90 * 24 * 3_600_000;

/** A pool's samples, oldest first, and the StartTime of the earliest read that gave them. */
export interface PoolHistory {
  readonly samples: readonly PriceSample[];
  readonly from: number;
}

/** Reads the samples of `pools` from `from` to `to` (ms since the epoch), each pool's oldest first, by {@link poolKey}. */
export type ReadHistory = (pools: readonly SpotPool[], from: number, to: number) => Promise<Map<string, PriceSample[]>>;

/** What {@link readSettledHistory} reads, and when a pool's history is enough. */
export interface SettledHistoryQuery {
  readonly pools: readonly SpotPool[];
  /** The first read's window. */
  readonly from: number;
  readonly to: number;
  /** Whether the history read so far tells the pool's surges: it begins at a time no surge was open (see `settledTime`). */
  settled(pool: SpotPool, history: PoolHistory): boolean;
  /**
   * Where each pool's last read back began, by {@link poolKey}: the next poll
   * reads from there at once, so a surge older than the window costs one more
   * read per poll, not a search each time. Kept up to date here.
   */
  readonly hints: Map<string, number>;
}

/** Whether EC2 has nothing before these samples: none was in effect when the read began, or the read reached EC2's 90 days. */
function startsHistory(history: PoolHistory, limit: number): boolean {
  const first = history.samples[0];
  return first === undefined || first.at > history.from || first.at <= limit || history.from <= limit;
}

/**
 * Reads the pools' history from `from` to `to` (one read, as before), then,
 * for the pools whose history does not yet tell their surges (a price above
 * its threshold when the window opens), reads further back: all such pools in
 * one read per step, each step reaching twice as far before their oldest
 * sample as the last, down to EC2's 90 days at most. A pool's history ends up
 * settled, or starting with the oldest sample EC2 has.
 */
export async function readSettledHistory(read: ReadHistory, query: SettledHistoryQuery): Promise<Map<string, PoolHistory>> {
  const { pools, from, to, hints } = query;
  const limit = to - HISTORY_KEPT_MS;
  const first = await read(pools, from, to);
  const histories = new Map<string, PoolHistory>(pools.map((pool) => [poolKey(pool), { samples: first.get(poolKey(pool)) ?? [], from }]));
  const lacking = (pool: SpotPool): boolean => {
    const history = histories.get(poolKey(pool))!;
    return !startsHistory(history, limit) && !query.settled(pool, history);
  };
  const readBack = new Set<string>();
  let asked = pools.filter(lacking);
  for (let step = 0, span = to - from; asked.length > 0; step++, span *= 2) {
    const oldest = asked.map((pool) => histories.get(poolKey(pool))!.samples[0]!.at);
    const targets = asked.map((pool, i) => {
      const hint = hints.get(poolKey(pool));
      return step === 0 && hint !== undefined && hint < oldest[i]! ? hint : oldest[i]! - span;
    });
    const start = Math.max(limit, Math.min(...targets));
    const more = await read(asked, start, Math.max(...oldest));
    for (const pool of asked) {
      const key = poolKey(pool);
      const known = histories.get(key)!.samples;
      // The read ends at or after the oldest sample known: only what came before it is new.
      const earlier = (more.get(key) ?? []).filter((s) => s.at < known[0]!.at);
      histories.set(key, { samples: [...earlier, ...known], from: start });
      readBack.add(key);
    }
    asked = asked.filter(lacking);
  }
  hints.clear();
  for (const key of readBack) hints.set(key, histories.get(key)!.from);
  return histories;
}
