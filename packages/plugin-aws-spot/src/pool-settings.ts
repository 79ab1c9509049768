import { Code, parseDuration, PluginError, type HandleContext } from '@hollowtrees/grpcplugin/without-grpc';

/** How long a pool call waits for its replacements to run, unless told otherwise. */
export const DEFAULT_POOL_WAIT_MS = 300_000;

/** Plugin-wide defaults of pool mode (CLI flags); a flow's config overrides `tag`, `subnets` and `waitTimeout`. */
export interface PoolOptions {
  /** Only instances carrying this tag, `key=value` (e.g. the cluster's tag), belong to a pool. Default: every spot instance of the pool. */
  tag?: string;
  /**
   * Subnets a replacement may launch in besides the old instance's own, e.g. the
   * cluster's subnets in other zones. Default none: other instance types in the same zone only.
   */
  subnets?: readonly string[];
  /** How long one call waits, at most, for the replacements to be running (the call's deadline also bounds it). Default 300 000 ms. */
  waitTimeoutMs?: number;
  /** How often the replacements' states are read while waiting. Default 5 000 ms. */
  pollIntervalMs?: number;
  /** CreateFleet calls in flight at once. Default 4. */
  fleetConcurrency?: number;
  /** Instances per DescribeInstances page (5 to 1000). Default 1000. */
  pageSize?: number;
}

/** Pool mode's settings for one call: the flow's config over the plugin-wide {@link PoolOptions}. */
export interface PoolSettings {
  readonly tag: { readonly key: string; readonly value: string } | undefined;
  readonly subnets: readonly string[];
  readonly waitTimeoutMs: number;
  readonly pollIntervalMs: number;
  readonly fleetConcurrency: number;
  readonly pageSize: number;
}

/** How a flow asks for pool mode. */
const POOL_MODE = 'pool';
/** The modes a flow's config may name; without one, the plugin replaces the event's instance. */
const MODES = new Set(['instance', POOL_MODE]);
/** The config keys only pool mode reads. */
const POOL_KEYS = ['tag', 'subnets', 'waitTimeout'] as const;
const KEYS = ['mode', ...POOL_KEYS];

function invalid(context: HandleContext, key: string, value: string, expected: string): PluginError {
  return new PluginError(Code.InvalidArgument, `flow ${context.flow}: aws-spot config ${key} "${value}" ${expected}`);
}

/**
 * Whether the flow runs the plugin in pool mode (`mode: pool`).
 * @throws PluginError INVALID_ARGUMENT for a mode it does not know, a key it
 *   does not know (a typo would leave the default in force without a word), or
 *   a pool key without `mode: pool`.
 */
export function isPoolMode(context: HandleContext): boolean {
  const { config } = context;
  const unknown = Object.keys(config).filter((k) => !KEYS.includes(k));
  if (unknown.length > 0) {
    throw new PluginError(Code.InvalidArgument, `flow ${context.flow}: aws-spot config: unknown key ${unknown.map((k) => `"${k}"`).join(', ')} (it takes ${KEYS.join(', ')})`);
  }
  const mode = config.mode;
  if (mode !== undefined && !MODES.has(mode)) throw invalid(context, 'mode', mode, `is not one of ${[...MODES].join(', ')}`);
  if (mode === POOL_MODE) return true;
  const poolOnly = POOL_KEYS.find((k) => config[k] !== undefined);
  if (poolOnly !== undefined) throw invalid(context, poolOnly, config[poolOnly]!, `applies only with mode: ${POOL_MODE}`);
  return false;
}

/**
 * Parses a tag filter `key=value`.
 * @throws Error saying what is wrong, for the caller to name where it came from.
 */
export function parseTagFilter(text: string): { key: string; value: string } {
  const at = text.indexOf('=');
  if (at <= 0) throw new Error('must be key=value');
  return { key: text.slice(0, at), value: text.slice(at + 1) };
}

/** A comma-separated list, blanks dropped. */
export const commaList = (text: string): string[] => text.split(',').map((s) => s.trim()).filter((s) => s !== '');

/**
 * The call's pool settings: the flow's config keys `tag` (`key=value`),
 * `subnets` (comma-separated) and `waitTimeout` (a duration such as `5m`)
 * over `defaults`.
 * @throws PluginError INVALID_ARGUMENT naming the flow, the key and the value.
 */
export function poolSettings(context: HandleContext, defaults: PoolOptions): PoolSettings {
  const { config } = context;
  const tagText = config.tag ?? defaults.tag;
  let tag: PoolSettings['tag'];
  if (tagText !== undefined) {
    try {
      tag = parseTagFilter(tagText);
    } catch (err) {
      throw invalid(context, 'tag', tagText, (err as Error).message);
    }
  }
  let waitTimeoutMs = defaults.waitTimeoutMs ?? DEFAULT_POOL_WAIT_MS;
  if (config.waitTimeout !== undefined) {
    const parsed = parseDuration(config.waitTimeout);
    if (parsed === undefined) throw invalid(context, 'waitTimeout', config.waitTimeout, 'is not a duration (e.g. 90s, 5m)');
    // As --pool-wait-timeout refuses 0s: every call, and every retry, would give up on what it just launched.
    if (parsed === 0) throw invalid(context, 'waitTimeout', config.waitTimeout, 'must be more than 0 (e.g. 90s, 5m)');
    waitTimeoutMs = parsed;
  }
  return {
    tag,
    subnets: config.subnets !== undefined ? commaList(config.subnets) : (defaults.subnets ?? []),
    waitTimeoutMs,
    pollIntervalMs: defaults.pollIntervalMs ?? 5_000,
    fleetConcurrency: defaults.fleetConcurrency ?? 4,
    pageSize: defaults.pageSize ?? 1_000,
  };
}
