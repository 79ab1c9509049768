import { formatPath } from '../validation-issues.js';
import type { ConfigProblem } from './config-error.js';

/**
 * Mapping keys no setting can have: `__proto__`, which the schema's records and objects drop
 * without a word (a flow, a plugin or a filter so named would silently not exist), and the empty
 * key, which names nothing (a filter on it never matches, so its flow would never run).
 * Answers one problem per such key, at the mapping that holds it.
 */
export function keyProblems(value: unknown, path: ReadonlyArray<string | number> = []): ConfigProblem[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => keyProblems(item, [...path, i]));
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, inner]) => {
    const here = key === '__proto__' ? 'a key named __proto__ is not read (JavaScript reserves it); rename it'
      : key === '' ? 'an empty key names nothing; remove it or name what it is for'
      : undefined;
    return here ? [{ path: formatPath(path), message: here }] : keyProblems(inner, [...path, key]);
  });
}
