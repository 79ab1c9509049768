import { Code, parseDuration, PluginError } from '@hollowtrees/grpcplugin';
import { MAX_WAIT_MS } from './options.js';

/** How a pool drain paces itself and which nodes it takes, for one call. */
export interface PoolSettings {
  /** Nodes draining at once. */
  maxUnavailable: number;
  /** Least time between the starts of two node drains, in milliseconds. */
  minIntervalMs: number;
  /** A label selector that picks the pool's nodes instead of the event's zone and instance type. */
  selector: string | undefined;
}

/** What a flow's plugin config asks of this plugin. */
export type DrainMode = { mode: 'instance' } | { mode: 'pool'; settings: PoolSettings };

const POOL_KEYS = ['maxUnavailable', 'minInterval', 'selector'] as const;
const KEYS = new Set<string>(['mode', ...POOL_KEYS]);

const invalid = (message: string): PluginError => new PluginError(Code.InvalidArgument, `flow plugin config: ${message}`);

/**
 * Reads the flow's per-call config (`HandleContext.config`): without `mode` (or
 * with `mode: instance`) the per-instance drain of today; with `mode: pool` the
 * pool drain, its pacing taken from `maxUnavailable`, `minInterval` (a duration
 * such as `30s`) and `selector`, each defaulting to `defaults`.
 * @throws PluginError INVALID_ARGUMENT naming the key: an unknown key or mode, a
 *   bad value, or a pool key without `mode: pool`.
 */
export function drainModeOf(config: Readonly<Record<string, string>>, defaults: Omit<PoolSettings, 'selector'>): DrainMode {
  const unknown = Object.keys(config).filter((k) => !KEYS.has(k));
  if (unknown.length > 0) throw invalid(`unknown key ${unknown.map((k) => `"${k}"`).join(', ')} (k8s-drain takes ${[...KEYS].join(', ')})`);
  const mode = config.mode ?? 'instance';
  if (mode === 'instance') {
    const poolOnly = POOL_KEYS.filter((k) => config[k] !== undefined);
    if (poolOnly.length > 0) throw invalid(`"${poolOnly[0]}" applies only with mode: pool`);
    return { mode };
  }
  if (mode !== 'pool') throw invalid(`"mode" must be pool or instance, got "${mode}"`);

  const { maxUnavailable: max, minInterval, selector } = config;
  if (max !== undefined && !/^[1-9]\d*$/.test(max)) throw invalid(`"maxUnavailable" must be an integer >= 1, got "${max}"`);
  const minIntervalMs = minInterval === undefined ? defaults.minIntervalMs : parseDuration(minInterval);
  if (minIntervalMs === undefined) throw invalid(`"minInterval" must be a duration such as 30s or 1m30s, got "${minInterval}"`);
  // Node fires a longer timer after 1 ms: the pool would drain with no pacing at all.
  if (minIntervalMs > MAX_WAIT_MS) throw invalid(`"minInterval" must be at most 24h, got "${minInterval}"`);
  if (selector !== undefined && selector.trim() === '') throw invalid('"selector" must be a label selector such as node-pool=spot-a, got an empty one');
  return { mode, settings: { maxUnavailable: max === undefined ? defaults.maxUnavailable : Number(max), minIntervalMs, selector: selector?.trim() } };
}
