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
  return { kind, levelAt: () => level };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * A jump: `ratio` × the median of the prices in effect during the `windowMs`
 * before the sample (the changes inside it and the price in effect when it
 * opens). No level before the pool's first sample.
 */
export function jumpThreshold(ratio: number, windowMs: number): ThresholdRule {
  return {
    kind: 'jump',
    levelAt(samples, i) {
      const sample = samples[i];
      if (i === 0 || !sample) return undefined;
      const opens = sample.at - windowMs;
      const prices: number[] = [];
      for (let j = i - 1; j >= 0; j--) {
        prices.push(samples[j]!.price);
        // The first change at or before the window opens is the price in effect then: older ones do not count.
        if (samples[j]!.at <= opens) break;
      }
      return ratio * median(prices);
    },
  };
}

/**
 * The surges in a pool's history, oldest first: a surge starts at the first
 * sample above the threshold and ends at the first sample at or below
 * threshold × (1 − `hysteresis`). A function of the history alone, so every
 * poll, replica and restart that reads the same history finds the same surges.
 */
export function findCrossings(samples: readonly PriceSample[], rule: ThresholdRule, hysteresis: number): Crossing[] {
  const found: Crossing[] = [];
  let open: Crossing | undefined;
  for (const [i, sample] of samples.entries()) {
    if (open === undefined) {
      const level = rule.levelAt(samples, i);
      if (level !== undefined && sample.price > level) open = { kind: rule.kind, crossedAt: sample.at, price: sample.price, threshold: level };
    } else if (sample.price <= open.threshold * (1 - hysteresis)) {
      found.push({ ...open, resolvedAt: sample.at, resolvedPrice: sample.price });
      open = undefined;
    }
  }
  if (open) found.push(open);
  return found;
}
