import type { CloudEvent } from '@hollowtrees/grpcplugin';
import type { FilterValue } from '../config/schema.js';
import { readEventField } from './event-fields.js';

/** Decides whether a flow takes an event: its type is allowed and every filter holds. */
export type EventMatcher = (event: CloudEvent) => boolean;

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Compiles `allowedEvents`: exact types, or globs where `*` stands for exactly
 * one dot-separated segment (`prometheus.server.alert.*` does not take
 * `prometheus.server.alert.X.resolved`).
 */
export function compileTypePatterns(patterns: readonly string[]): (type: string) => boolean {
  const exact = new Set(patterns.filter((p) => !p.includes('*')));
  const globs = patterns
    .filter((p) => p.includes('*'))
    .map((p) => new RegExp(`^${p.split('*').map(escapeRegex).join('[^.]+')}$`));
  return (type) => exact.has(type) || globs.some((g) => g.test(type));
}

function compileFilter(value: FilterValue): (actual: string | undefined) => boolean {
  if (typeof value === 'string') return (actual) => actual === value;
  if (Array.isArray(value)) {
    const allowed = new Set(value);
    return (actual) => actual !== undefined && allowed.has(actual);
  }
  if ('not' in value) {
    const denied = new Set(typeof value.not === 'string' ? [value.not] : value.not);
    return (actual) => actual === undefined || !denied.has(actual);
  }
  const regex = new RegExp(`^(?:${value.regex})$`);
  return (actual) => actual !== undefined && regex.test(actual);
}

/** Compiles a flow's `allowedEvents` and `filters` into one predicate. */
export function compileMatcher(allowedEvents: readonly string[], filters: Readonly<Record<string, FilterValue>>): EventMatcher {
  const typeAllowed = compileTypePatterns(allowedEvents);
  const checks = Object.entries(filters).map(([key, value]) => {
    const test = compileFilter(value);
    return (event: CloudEvent) => test(readEventField(event, key));
  });
  return (event) => typeAllowed(event.type) && checks.every((check) => check(event));
}
