import type { z } from 'zod';
import { textStart } from './text-start.js';

/** One problem in validated input, at a path such as `flows.spot.plugins[1]` or `alerts[3].labels`. */
export interface InputProblem {
  path: string;
  message: string;
}

/** The longest key a path shows whole: a sender's key names are theirs to make a megabyte long, and a message would echo them. */
const MAX_KEY_SHOWN = 64;

/** A key as a path shows it: its first {@link MAX_KEY_SHOWN} characters. */
export const shownKey = (key: string): string => textStart(key, MAX_KEY_SHOWN);

/** Formats a path the way a reader of the YAML or JSON thinks of it: `flows.spot.plugins[1]`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path
    .map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${shownKey(String(key))}`))
    .join('');
}

/**
 * A type as a reader of YAML or JSON knows it: zod calls a map of names (`flows`, `labels`) a
 * record, which is an object (a YAML mapping) to everyone else, as `server` or an alert is.
 */
const typeName = (expected: string): string => (expected === 'record' ? 'object' : expected);

/**
 * The `params` of a custom issue whose message should end with the value it
 * got: the value is kept out of the message so that {@link describeIssues}'
 * caller decides how (or whether) it may be shown.
 */
export interface ShownInput {
  got: string;
}

const shownInput = (issue: z.core.$ZodIssue): string | undefined =>
  issue.code === 'custom' && typeof (issue.params as Partial<ShownInput> | undefined)?.got === 'string' ? (issue.params as ShownInput).got : undefined;

/**
 * `schema.safeParse(value)`, whose issues carry the `input` each refers to when it fails, for
 * {@link describeIssues} to show. zod's `reportInput` makes every parse two to three times slower
 * (an alert: 7–10 µs against 3–4 µs), failing or not: a value is parsed without it first, and again
 * with it only when it fails. Schemas here are pure, so the second parse finds the same issues.
 */
export function safeParseWithInput<S extends z.ZodType>(schema: S, value: unknown): z.ZodSafeParseResult<z.output<S>> {
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed : schema.safeParse(value, { reportInput: true });
}

/**
 * Turns zod's issues into problems a person can act on: unknown fields named, missing ones called required.
 * `show` writes a value a custom issue asks to show (see {@link ShownInput}); default: quoted.
 */
export function describeIssues(
  issues: readonly z.core.$ZodIssue[],
  prefix: readonly PropertyKey[] = [],
  show: (path: string, value: string) => string = (_path, value) => JSON.stringify(value),
): InputProblem[] {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    // A key a record refused (e.g. a plugin name): what its own schema said, at that key.
    if (issue.code === 'invalid_key') return describeIssues(issue.issues, path, show);
    // A union where one alternative took the value's type (an object where a name or an object goes) and
    // refused something inside it: that alternative's problems say what and where, the union's cannot.
    if (issue.code === 'invalid_union') {
      const reached = issue.errors.filter((branch) => !branch.every((inner) => inner.code === 'invalid_type' && inner.path.length === 0));
      if (reached.length === 1) return describeIssues(reached[0]!, path, show);
    }
    const got = shownInput(issue);
    if (got !== undefined) return [{ path: formatPath(path), message: `${issue.message}, got ${show(formatPath(path), got)}` }];
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: formatPath([...path, key]), message: 'unknown field' }));
    }
    if (issue.code === 'invalid_type' && issue.input === undefined) {
      return [{ path: formatPath(path), message: `required (expected ${typeName(issue.expected)})` }];
    }
    if (issue.code === 'invalid_type' && issue.expected === 'record') {
      return [{ path: formatPath(path), message: issue.message.replace('expected record', 'expected object') }];
    }
    return [{ path: formatPath(path), message: issue.message }];
  });
}

/** Problems a message lists; the rest are only counted. */
export const PROBLEMS_LISTED = 5;

/** `path: message` lines joined with `; `, the first `limit` of them, then how many more there are (those not in `problems` among them: `unlisted`). */
export function problemsText(problems: readonly InputProblem[], limit = PROBLEMS_LISTED, unlisted = 0): string {
  const shown = problems.slice(0, limit).map((p) => (p.path ? `${p.path}: ${p.message}` : p.message));
  const more = problems.length - shown.length + unlisted;
  if (more > 0) shown.push(`and ${more} more`);
  return shown.join('; ');
}
