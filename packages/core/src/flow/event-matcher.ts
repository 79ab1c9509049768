import { rememberingRecent, type CloudEvent } from '@hollowtrees/grpcplugin/without-grpc';
import type { FilterValue } from '../config/schema.js';
import { readEventField } from './event-fields.js';

/** Why a flow does not take an event: the first check that failed. */
export interface Mismatch {
  /** `type` when the type is not in `allowedEvents`, else the filter key that failed. */
  key: string;
  /** The event's value there; undefined when it has none. */
  actual: string | undefined;
  /** What the flow wants, as the configuration says it (`one of [terminate, stop]`). */
  expected: string;
}

/**
 * Decides whether a flow takes an event: its type is allowed and every filter
 * holds. Returns undefined when it does, else why not, so that the engine's
 * debug log and `hollowtrees explain` give the reason the engine acted on.
 */
export type EventMatcher = (event: CloudEvent) => Mismatch | undefined;

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Compiles `allowedEvents`: exact types, or globs where `*` stands for one or
 * more characters within one dot-separated segment (`prometheus.server.alert.*`
 * does not take `prometheus.server.alert.X.resolved`; `…alert.Spot*` takes
 * `…alert.SpotInstanceTerminating`).
 */
export function compileTypePatterns(patterns: readonly string[]): (type: string) => boolean {
  const exact = new Set(patterns.filter((p) => !p.includes('*')));
  const globs = patterns
    .filter((p) => p.includes('*'))
    .map((p) => new RegExp(`^${p.split('*').map(escapeRegex).join('[^.]+')}$`));
  // Remembered per type: events come in few types, and each is tested against every flow's globs.
  return rememberingRecent((type) => exact.has(type) || globs.some((g) => g.test(type)), 1_024);
}

const list = (values: readonly string[]): string => `[${values.join(', ')}]`;

/** A filter's test and, for explanations, what it wants. */
function compileFilter(value: FilterValue): { test: (actual: string | undefined) => boolean; expected: string } {
  if (typeof value === 'string') return { test: (actual) => actual === value, expected: JSON.stringify(value) };
  if (Array.isArray(value)) {
    const allowed = new Set(value);
    return { test: (actual) => actual !== undefined && allowed.has(actual), expected: `one of ${list(value)}` };
  }
  if ('not' in value) {
    const denied = typeof value.not === 'string' ? [value.not] : value.not;
    const deniedSet = new Set(denied);
    return { test: (actual) => actual === undefined || !deniedSet.has(actual), expected: `none of ${list(denied)}` };
  }
  const regex = new RegExp(`^(?:${value.regex})$`);
  return { test: (actual) => actual !== undefined && regex.test(actual), expected: `matching /^(?:${value.regex})$/` };
}

/** Compiles a flow's `allowedEvents` and `filters` into one matcher. */
export function compileMatcher(allowedEvents: readonly string[], filters: Readonly<Record<string, FilterValue>>): EventMatcher {
  const typeAllowed = compileTypePatterns(allowedEvents);
  const allowedText = `one of allowedEvents ${list(allowedEvents)}`;
  const checks = Object.entries(filters).map(([key, value]) => ({ key, ...compileFilter(value) }));
  return (event) => {
    if (!typeAllowed(event.type)) return { key: 'type', actual: event.type, expected: allowedText };
    for (const check of checks) {
      const actual = readEventField(event, check.key);
      if (!check.test(actual)) return { key: check.key, actual, expected: check.expected };
    }
    return undefined;
  };
}

/** One line for a person: `instance_action is "x", expected one of [terminate, stop]`. */
export function describeMismatch(mismatch: Mismatch): string {
  const actual = mismatch.actual === undefined ? 'absent' : `is ${JSON.stringify(mismatch.actual)}`;
  return `${mismatch.key} ${actual}, expected ${mismatch.expected}`;
}
