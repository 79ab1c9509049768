import { isUtf8 } from 'node:buffer';
import type { CloudEvent } from '@hollowtrees/grpcplugin';
import type { z } from 'zod';
import type { ReceiverLimits } from '../config/schema.js';
import { describeIssues, problemsText, type InputProblem } from '../validation-issues.js';
import { alertArraySchema, postableAlertSchema, webhookAlertSchema, webhookEnvelopeSchema } from './alert-schemas.js';
import { alertToEvent, statusFromEndsAt, type AlertEventData, type ReceivedAlert } from './alert-to-event.js';
import { HttpError } from './http-error.js';
import { mapInSlices } from './slices.js';

/** The alert formats the receiver reads. */
export type AlertFormat = 'api_v2' | 'api_v1' | 'webhook';

const DEFAULT_SOURCE = 'urn:hollowtrees:receiver';

function parseJson(body: Buffer): unknown {
  if (!isUtf8(body)) throw new HttpError(400, 'bad_json', 'body is not valid UTF-8');
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'bad_json', `body is not valid JSON: ${(err as Error).message}`);
  }
}

function validate<S extends z.ZodType>(schema: S, value: unknown, prefix: PropertyKey[]): z.output<S> {
  const parsed = schema.safeParse(value, { reportInput: true });
  if (!parsed.success) throw new HttpError(400, 'bad_data', problemsText(describeIssues(parsed.error.issues, prefix)));
  return parsed.data;
}

/** The origin of a URL (`http://prometheus:9090`), the CloudEvents source of what it generated. */
function originOf(url: string): string | undefined {
  if (!url) return undefined;
  try {
    const origin = new URL(url).origin;
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

function checkCount(count: number, limits: ReceiverLimits): void {
  if (count > limits.maxAlertsPerRequest) {
    throw new HttpError(413, 'too_many_alerts', `request carries ${count} alerts, more than the limit of ${limits.maxAlertsPerRequest}`);
  }
}

function checkLabels(alerts: readonly ReceivedAlert[], limits: ReceiverLimits): void {
  alerts.forEach((alert, i) => {
    const entries = Object.entries(alert.labels);
    if (entries.length > limits.maxLabelsPerAlert) {
      throw new HttpError(400, 'bad_data', `alerts[${i}].labels: ${entries.length} labels, more than the limit of ${limits.maxLabelsPerAlert}`);
    }
    for (const [name, value] of entries) {
      if (name.length > limits.maxLabelLength || value.length > limits.maxLabelLength) {
        throw new HttpError(400, 'bad_data', `alerts[${i}].labels.${name.slice(0, 64)}: longer than the limit of ${limits.maxLabelLength} characters`);
      }
    }
  });
}

/**
 * Validates each alert on its own, a slice at a time, and collects every
 * problem under the alert's index, as one schema over the whole array would.
 */
async function validateAlerts<S extends z.ZodType>(schema: S, alerts: readonly unknown[]): Promise<Array<z.output<S>>> {
  const problems: InputProblem[] = [];
  const valid = await mapInSlices(alerts, (alert, i) => {
    const parsed = schema.safeParse(alert, { reportInput: true });
    if (parsed.success) return parsed.data as z.output<S>;
    problems.push(...describeIssues(parsed.error.issues, ['alerts', i]));
    return undefined;
  });
  if (problems.length > 0) throw new HttpError(400, 'bad_data', problemsText(problems));
  return valid as Array<z.output<S>>;
}

/**
 * Validates a whole request body and turns every alert into a CloudEvent, a
 * slice of alerts at a time so that a large batch lets the event loop turn.
 * The batch is all or nothing: the first problem rejects the request with a
 * 400 naming the alert's index and field.
 */
export async function parseAlerts(format: AlertFormat, body: Buffer, receivedAt: Date, limits: ReceiverLimits): Promise<Array<CloudEvent<AlertEventData>>> {
  const json = parseJson(body);
  let alerts: ReceivedAlert[];
  let source: (alert: ReceivedAlert) => string;
  if (format === 'webhook') {
    const payload = validate(webhookEnvelopeSchema, json, []);
    checkCount(payload.alerts.length, limits);
    alerts = await validateAlerts(webhookAlertSchema, payload.alerts);
    const external = originOf(payload.externalURL) ?? DEFAULT_SOURCE;
    source = () => external;
  } else {
    // Count before validating, so an oversized batch costs no validation work.
    const list = validate(alertArraySchema, json, ['alerts']);
    checkCount(list.length, limits);
    alerts = (await validateAlerts(postableAlertSchema, list)).map((a) => ({ ...a, status: statusFromEndsAt(a.endsAt, receivedAt) }));
    source = (alert) => originOf(alert.generatorURL) ?? DEFAULT_SOURCE;
  }
  checkLabels(alerts, limits);
  return mapInSlices(alerts, (alert) => alertToEvent(alert, receivedAt, source(alert)));
}
