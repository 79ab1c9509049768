import { isUtf8 } from 'node:buffer';
import type { z } from 'zod';
import type { ReceiverLimits } from '../config/schema.js';
import { textNestedDeeperThan } from '../json-depth.js';
import { describeIssues, PROBLEMS_LISTED, problemsText, safeParseWithInput, shownKey, type InputProblem } from '../validation-issues.js';
import { HttpError } from './http-error.js';
import { slicer } from './slices.js';

/** A body as text; 400 `bad_json` when it is not UTF-8: decoded leniently, the sender's bytes would become U+FFFD. */
export function utf8Text(body: Buffer): string {
  if (!isUtf8(body)) throw new HttpError(400, 'bad_json', 'body is not valid UTF-8');
  return body.toString('utf8');
}

/**
 * Parses a request body as UTF-8 JSON; 400 `bad_json` otherwise. A body nested more than `maxDepth`
 * levels is refused (400 `bad_data`) before it is parsed: parsing a megabyte of `[` holds the thread
 * for a third of a second or more, only for the same refusal after.
 */
export function parseJson(body: Buffer, maxDepth?: number): unknown {
  const text = utf8Text(body);
  if (maxDepth !== undefined && textNestedDeeperThan(text, maxDepth)) throw new HttpError(400, 'bad_data', `body: nested more than ${maxDepth} levels deep`);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'bad_json', `body is not valid JSON: ${(err as Error).message}`);
  }
}

/** A 400 `bad_data` naming every problem zod found, each under `prefix`; one with the body itself (a JSON array where an object goes) is named `body`. */
export function badData(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[]): HttpError {
  return new HttpError(400, 'bad_data', problemsText(describeIssues(issues, prefix).map((problem) => (problem.path ? problem : { ...problem, path: 'body' }))));
}

/** Validates `value` with `schema`; a 400 naming the fields under `prefix` otherwise. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, prefix: readonly PropertyKey[]): z.output<S> {
  const parsed = safeParseWithInput(schema, value);
  if (!parsed.success) throw badData(parsed.error.issues, prefix);
  return parsed.data;
}

/** The items of a batch judged one by one: the valid ones in order, and what is wrong with the others. */
export interface ValidatedItems<T> {
  valid: T[];
  /** Items refused. */
  refused: number;
  /**
   * The first {@link PROBLEMS_LISTED} problems of the refused items, under the item's index (`alerts[3].labels`):
   * all a message lists. Every problem kept, a bad megabyte of alerts kept 125,000 (11 MB), each copied from
   * the parsing thread to the event loop.
   */
  problems: InputProblem[];
  /** Problems found beyond `problems`, counted only; absent when there are none. */
  unlisted?: number;
}

/** Keeps `found` in `result` while it lists fewer than {@link PROBLEMS_LISTED}; counts the rest. */
function addProblems(result: ValidatedItems<unknown>, found: readonly InputProblem[]): void {
  const room = PROBLEMS_LISTED - result.problems.length;
  result.problems.push(...found.slice(0, room));
  if (found.length > room) result.unlisted = (result.unlisted ?? 0) + found.length - room;
}

/**
 * Validates each item of a batch on its own, a slice at a time, with `before`
 * (a limit that spares zod work, on the item as parsed), `schema` and then
 * `check` (a problem zod cannot see, such as a limit), and names the
 * problems under the item's index, as one schema over the whole array would:
 * the first {@link PROBLEMS_LISTED}, and how many more.
 */
export async function validateItems<S extends z.ZodType>(
  schema: S,
  items: readonly unknown[],
  name: string,
  check?: (item: z.output<S>, index: number) => InputProblem | undefined,
  before?: (item: unknown, index: number) => InputProblem | undefined,
): Promise<ValidatedItems<z.output<S>>> {
  const result: ValidatedItems<z.output<S>> = { valid: [], refused: 0, problems: [] };
  const nextItem = slicer();
  for (let i = 0; i < items.length; i++) {
    const pause = nextItem();
    if (pause) await pause;
    const early = before?.(items[i], i);
    if (early !== undefined) {
      result.refused++;
      addProblems(result, [early]);
      continue;
    }
    const parsed = safeParseWithInput(schema, items[i]);
    const problem = parsed.success ? check?.(parsed.data as z.output<S>, i) : undefined;
    if (parsed.success && problem === undefined) {
      result.valid.push(parsed.data as z.output<S>);
      continue;
    }
    result.refused++;
    if (problem !== undefined) addProblems(result, [problem]);
    else if (!parsed.success) addProblems(result, describeIssues(parsed.error.issues, [name, i]));
  }
  return result;
}

/** {@link validateItems} for a batch that is all or nothing: any refused item refuses it whole, with a 400 naming every problem. */
export async function validateEach<S extends z.ZodType>(schema: S, items: readonly unknown[], name: string): Promise<Array<z.output<S>>> {
  const { valid, problems, unlisted } = await validateItems(schema, items, name);
  if (problems.length > 0) throw new HttpError(400, 'bad_data', problemsText(problems, PROBLEMS_LISTED, unlisted));
  return valid;
}

/** 413 when a request carries more alerts or events than `maxAlertsPerRequest`. */
export function checkCount(count: number, limits: ReceiverLimits, noun: 'alerts' | 'events'): void {
  if (count > limits.maxAlertsPerRequest) {
    throw new HttpError(413, `too_many_${noun}`, `request carries ${count} ${noun}, more than the limit of ${limits.maxAlertsPerRequest}`);
  }
}

/**
 * What is wrong with a label map that has too long labels, if anything; `path` names it
 * (`alerts[2].labels`, `data.labels`), asked only then: a large batch builds no string per alert.
 * Their count was checked before the schema ({@link labelCountProblem}), and is not counted again.
 */
export function labelsProblem(labels: Readonly<Record<string, string>>, limits: ReceiverLimits, path: () => string): InputProblem | undefined {
  // Plain loops, not Object.entries: no array per label on the path every alert takes.
  for (const name in labels) {
    if (name.length > limits.maxLabelLength || labels[name]!.length > limits.maxLabelLength) {
      return { path: `${path()}.${shownKey(name)}`, message: `longer than the limit of ${limits.maxLabelLength} characters` };
    }
  }
  return undefined;
}

/**
 * The problem with a label (or annotation) map of more than `maxLabelsPerAlert` entries, if it is one.
 * Takes it as parsed, before zod, which would validate and copy every entry first (90,000 labels in
 * one alert held the thread half a second); what is no object is zod's to name. `noun` names the entries.
 */
export function labelCountProblem(labels: unknown, limits: ReceiverLimits, path: () => string, noun: 'labels' | 'annotations' = 'labels'): InputProblem | undefined {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) return undefined;
  let count = 0;
  for (const _ in labels) count++;
  return count > limits.maxLabelsPerAlert ? { path: path(), message: `${count} ${noun}, more than the limit of ${limits.maxLabelsPerAlert}` } : undefined;
}

/** 400 naming `problem`, when there is one. */
function refuse(problem: InputProblem | undefined): void {
  if (problem) throw new HttpError(400, 'bad_data', problemsText([problem]));
}

/** 400 when {@link labelsProblem} finds a problem with a label map. */
export function checkLabels(labels: Readonly<Record<string, string>>, limits: ReceiverLimits, path: () => string): void {
  refuse(labelsProblem(labels, limits, path));
}

/** 400 when {@link labelCountProblem} finds too many labels in a label map as parsed. */
export function checkLabelCount(labels: unknown, limits: ReceiverLimits, path: () => string): void {
  refuse(labelCountProblem(labels, limits, path));
}

/**
 * 400 when an event's `id` is longer than `maxLabelLength`, as a label value would be: the id is
 * the group key of a flow without `groupBy` and is kept with its run (twice in a Kubernetes
 * Lease, whose annotations the API server bounds at 256 KiB), so a longer one could never be
 * claimed and every re-send would be refused 503.
 */
export function checkId(id: string, limits: ReceiverLimits, path: string): void {
  if (id.length > limits.maxLabelLength) throw new HttpError(400, 'bad_data', `${path}: longer than the limit of ${limits.maxLabelLength} characters`);
}
