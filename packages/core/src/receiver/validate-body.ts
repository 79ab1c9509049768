import { isUtf8 } from 'node:buffer';
import type { z } from 'zod';
import type { ReceiverLimits } from '../config/schema.js';
import { describeIssues, problemsText, type InputProblem } from '../validation-issues.js';
import { HttpError } from './http-error.js';
import { mapInSlices } from './slices.js';

/** Parses a request body as UTF-8 JSON; 400 `bad_json` otherwise. */
export function parseJson(body: Buffer): unknown {
  if (!isUtf8(body)) throw new HttpError(400, 'bad_json', 'body is not valid UTF-8');
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'bad_json', `body is not valid JSON: ${(err as Error).message}`);
  }
}

/** A 400 `bad_data` naming every problem zod found, each under `prefix`. */
export function badData(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[]): HttpError {
  return new HttpError(400, 'bad_data', problemsText(describeIssues(issues, prefix)));
}

/** Validates `value` with `schema`; a 400 naming the fields under `prefix` otherwise. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, prefix: readonly PropertyKey[]): z.output<S> {
  const parsed = schema.safeParse(value, { reportInput: true });
  if (!parsed.success) throw badData(parsed.error.issues, prefix);
  return parsed.data;
}

/**
 * Validates each item of a batch on its own, a slice at a time, and collects
 * every problem under the item's index (`alerts[3].labels`), as one schema over
 * the whole array would.
 */
export async function validateEach<S extends z.ZodType>(schema: S, items: readonly unknown[], name: string): Promise<Array<z.output<S>>> {
  const problems: InputProblem[] = [];
  const valid = await mapInSlices(items, (item, i) => {
    const parsed = schema.safeParse(item, { reportInput: true });
    if (parsed.success) return parsed.data as z.output<S>;
    problems.push(...describeIssues(parsed.error.issues, [name, i]));
    return undefined;
  });
  if (problems.length > 0) throw new HttpError(400, 'bad_data', problemsText(problems));
  return valid as Array<z.output<S>>;
}

/** 413 when a request carries more alerts or events than `maxAlertsPerRequest`. */
export function checkCount(count: number, limits: ReceiverLimits, noun: 'alerts' | 'events'): void {
  if (count > limits.maxAlertsPerRequest) {
    throw new HttpError(413, `too_many_${noun}`, `request carries ${count} ${noun}, more than the limit of ${limits.maxAlertsPerRequest}`);
  }
}

/**
 * 400 when a label map has too many or too long labels; `path` names it
 * (`alerts[2].labels`, `data.labels`), asked only then: a large batch builds
 * no string per alert.
 */
export function checkLabels(labels: Readonly<Record<string, string>>, limits: ReceiverLimits, path: () => string): void {
  // Plain loops, not Object.entries: no array per label on the path every alert takes.
  let count = 0;
  for (const _ in labels) count++;
  if (count > limits.maxLabelsPerAlert) {
    throw new HttpError(400, 'bad_data', `${path()}: ${count} labels, more than the limit of ${limits.maxLabelsPerAlert}`);
  }
  for (const name in labels) {
    if (name.length > limits.maxLabelLength || labels[name]!.length > limits.maxLabelLength) {
      throw new HttpError(400, 'bad_data', `${path()}.${name.slice(0, 64)}: longer than the limit of ${limits.maxLabelLength} characters`);
    }
  }
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
