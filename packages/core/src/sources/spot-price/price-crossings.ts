/** Which threshold a price crossed: a fixed price, a share of the on-demand price, or a jump over the recent level. */
export type ThresholdKind = 'absolute' | 'on-demand-ratio' | 'jump';

/** One price change of a pool: in effect from `at` (ms since the epoch) until the next. */
export interface PriceSample {
  readonly price: number;
  readonly at: number;
}

/** A threshold: its kind, and its level when sample `i` of `samples` (oldest first) came in; undefined when it has none yet. */
export interface ThresholdRule {
  readonly kind: ThresholdKind;
  /** How far back before a sample its level looks: 0 for a fixed level. */
  readonly windowMs: number;
  levelAt(samples: readonly PriceSample[], i: number): number | undefined;
}

/** One surge: from the sample that crossed the threshold to the one that fell back, when one did. */
export interface Crossing {
  readonly kind: ThresholdKind;
  /** The crossing sample's timestamp: what makes the surge's identity. */
  readonly crossedAt: number;
  readonly price: number;
  /** The threshold the price crossed, held for the whole surge: a jump's level is the level before it. */
  readonly threshold: number;
  readonly resolvedAt?: number;
  readonly resolvedPrice?: number;
}

/** A fixed threshold: `maxPrice`, or `onDemandRatio` × the on-demand price. */
export function fixedThreshold(kind: ThresholdKind, level: number): ThresholdRule {
  return { kind, windowMs: 0, levelAt: () => level };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * A jump: `ratio` × the median of the prices in effect during the `windowMs`
 * before the sample (the changes inside it and the price in effect when it
 * opens). No level until the samples reach back to the window's opening: a
 * level taken on part of the window would depend on where the read began.
 */
export function jumpThreshold(ratio: number, windowMs: number): ThresholdRule {
  return {
    kind: 'jump',
    windowMs,
    levelAt(samples, i) {
      const sample = samples[i];
      if (!sample) return undefined;
      const opens = sample.at - windowMs;
      const prices: number[] = [];
      for (let j = i - 1; j >= 0; j--) {
        prices.push(samples[j]!.price);
        // The first change at or before the window opens is the price in effect then: older ones do not count.
        if (samples[j]!.at <= opens) return ratio * median(prices);
      }
      return undefined;
    },
  };
}

/** Whether `price` is at or below the reset level of `threshold`, where a surge over it ends. */
const atOrBelowResetLevel = (price: number, threshold: number, hysteresis: number): boolean => price <= threshold * (1 - hysteresis);

/** `crossing`, ended by `sample`. */
const endedBy = (crossing: Crossing, sample: PriceSample): Crossing => ({ ...crossing, resolvedAt: sample.at, resolvedPrice: sample.price });

/**
 * The surges in a pool's history, oldest first: a surge starts at the first
 * sample above the threshold and ends at the first sample at or below
 * threshold × (1 − `hysteresis`). A function of the history alone, so every
 * poll, replica and restart that reads the same history finds the same surges.
 * Only the samples after `after` are looked at (levels still look before it):
 * pass a time at which no surge was open ({@link settledTime}).
 */
export function findCrossings(samples: readonly PriceSample[], rule: ThresholdRule, hysteresis: number, after = -Infinity): Crossing[] {
  const found: Crossing[] = [];
  let open: Crossing | undefined;
  for (const [i, sample] of samples.entries()) {
    if (sample.at <= after) continue;
    if (open === undefined) {
      const level = rule.levelAt(samples, i);
      if (level !== undefined && sample.price > level) open = { kind: rule.kind, crossedAt: sample.at, price: sample.price, threshold: level };
    } else if (atOrBelowResetLevel(sample.price, open.threshold, hysteresis)) {
      found.push(endedBy(open, sample));
      open = undefined;
    }
  }
  if (open) found.push(open);
  return found;
}

/**
 * The latest time at or before `until` at which no surge of `rule` was open,
 * as far as `samples` tell; undefined when they do not reach back far enough
 * (read further back). Crossings found from that time on are the same
 * whichever earlier sample a read began with, so their ids are too.
 *
 * A fixed threshold: the price then is at or below its reset level. A jump:
 * no change in the window before that time crossed its level (a surge that
 * began earlier and stayed up is not told apart from a new normal here; the
 * process that announced it holds it, see {@link fellBack}).
 */
export function settledTime(samples: readonly PriceSample[], rule: ThresholdRule, hysteresis: number, until: number): number | undefined {
  // `until` first (with the change in effect then), then each change before it, latest first.
  for (let i = samples.findLastIndex((s) => s.at <= until), t = until; i >= 0; i--, t = samples[i]?.at ?? t) {
    const settled = rule.windowMs === 0 ? atOrBelowReset(samples, rule, hysteresis, i) : noCrossingInWindow(samples, rule, i, t);
    if (settled === undefined) return undefined;
    if (settled) return t;
  }
  return undefined;
}

/** Whether change `i` is at or below its reset level. */
function atOrBelowReset(samples: readonly PriceSample[], rule: ThresholdRule, hysteresis: number, i: number): boolean | undefined {
  const level = rule.levelAt(samples, i);
  return level === undefined ? undefined : atOrBelowResetLevel(samples[i]!.price, level, hysteresis);
}

/** Whether no change in the window up to `t` (change `i` the last of them) crossed its level; undefined when a level there is unknown. */
function noCrossingInWindow(samples: readonly PriceSample[], rule: ThresholdRule, i: number, t: number): boolean | undefined {
  const opens = t - rule.windowMs;
  if (samples[0]!.at > opens) return undefined;
  for (let j = i; j >= 0 && samples[j]!.at > opens; j--) {
    const level = rule.levelAt(samples, j);
    if (level === undefined) return undefined;
    if (samples[j]!.price > level) return false;
  }
  return true;
}

/**
 * The end of a surge whose crossing sample a read may not hold any more: the
 * first sample after it at or below its reset level. Finding no crossing is no
 * end: only a price that fell back is.
 */
export function fellBack(samples: readonly PriceSample[], crossing: Crossing, hysteresis: number): Crossing | undefined {
  const end = samples.find((s) => s.at > crossing.crossedAt && atOrBelowResetLevel(s.price, crossing.threshold, hysteresis));
  return end && endedBy(crossing, end);
}
