import type { CloudEvent } from '@hollowtrees/grpcplugin';
import { z } from 'zod';
import type { ReceiverLimits } from '../config/schema.js';
import { parseAlerts, type AlertFormat } from '../receiver/parse-alerts.js';
import { HttpError } from '../receiver/http-error.js';
import { describeIssues, problemsText } from '../validation-issues.js';

/** Input `hollowtrees explain` cannot read; the message says what and where. */
export class ExplainInputError extends Error {
  override readonly name = 'ExplainInputError';
}

/** A structured-mode CloudEvent in JSON; extension attributes are dropped, as flows cannot match on them. */
const cloudEventSchema = z.object({
  id: z.string().min(1),
  source: z.string().min(1),
  specversion: z.literal('1.0'),
  type: z.string().min(1),
  time: z.string().optional(),
  subject: z.string().optional(),
  datacontenttype: z.string().optional(),
  dataschema: z.string().optional(),
  data: z.unknown().optional(),
});

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function toCloudEvents(list: readonly unknown[]): CloudEvent[] {
  return list.map((item, i) => {
    const parsed = cloudEventSchema.safeParse(item, { reportInput: true });
    if (!parsed.success) throw new ExplainInputError(problemsText(describeIssues(parsed.error.issues, list.length > 1 ? [i] : [])));
    return parsed.data satisfies CloudEvent;
  });
}

/** Which receiver path would take this body: webhook payload, a list of postable alerts, or one alert. */
function alertFormat(json: unknown): { format: AlertFormat; body: unknown } {
  if (isObject(json) && 'alerts' in json) return { format: 'webhook', body: json };
  return { format: 'api_v2', body: Array.isArray(json) ? json : [json] };
}

/**
 * Reads what `hollowtrees explain` is given: a CloudEvent (or a JSON list of
 * them), an Alertmanager webhook payload, a list of Alertmanager API v2
 * postable alerts, or one such alert. Alerts become events through the
 * receiver's own parser, as if POSTed at `receivedAt`.
 */
export async function readExplainInput(text: string, receivedAt: Date, limits: ReceiverLimits): Promise<CloudEvent[]> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ExplainInputError(`not valid JSON: ${(err as Error).message}`);
  }
  const first = Array.isArray(json) ? json[0] : json;
  if (isObject(first) && 'specversion' in first) return toCloudEvents(Array.isArray(json) ? json : [json]);
  const { format, body } = alertFormat(json);
  try {
    return await parseAlerts(format, Buffer.from(JSON.stringify(body)), receivedAt, limits);
  } catch (err) {
    if (err instanceof HttpError) throw new ExplainInputError(`not a CloudEvent (no specversion), nor an alert the receiver takes: ${err.message}`);
    throw err;
  }
}
