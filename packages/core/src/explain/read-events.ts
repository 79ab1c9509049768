import type { CloudEvent } from '@hollowtrees/grpcplugin';
import type { ReceiverLimits } from '../config/schema.js';
import { parseAlerts, type AlertFormat } from '../receiver/parse-alerts.js';
import { HttpError } from '../receiver/http-error.js';
import { bodyTooLarge } from '../receiver/read-body.js';
import { parseCloudEvents } from '../receiver/parse-cloudevents.js';
import { utf8Text } from '../receiver/validate-body.js';
import { noticeToEvents } from '../sources/sqs/notice-to-events.js';
import { isObject } from '../json-object.js';
import { PROBLEMS_LISTED, problemsText } from '../validation-issues.js';

/** Input `hollowtrees explain` cannot read; the message says what and where. */
export class ExplainInputError extends Error {
  override readonly name = 'ExplainInputError';
}

/** An SQS message body from EventBridge, Auto Scaling or SNS, as the queue source reads it. */
const isNotice = (value: Record<string, unknown>): boolean => 'detail-type' in value || 'LifecycleTransition' in value || 'Event' in value || ('Type' in value && 'Message' in value);

/** Reads what the receiver's parser or the queue source's converter refuses as input explain cannot use. */
async function asExplainInput<T>(read: () => T | Promise<T>, prefix = ''): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof HttpError) throw new ExplainInputError(`${prefix}${err.message}`);
    throw err;
  }
}

/**
 * Which receiver path would take this body: webhook payload, a list of postable alerts, or one alert (an object). JSON
 * that is neither goes as it is, to be refused as no list of alerts, not as an alert in a list the input does not have.
 */
function alertFormat(json: unknown): { format: AlertFormat; body: unknown } {
  if (isObject(json) && 'alerts' in json) return { format: 'webhook', body: json };
  return { format: 'api_v2', body: isObject(json) ? [json] : json };
}

/** What `hollowtrees explain` explains: the events its input makes, and what of it the receiver would refuse while taking the rest. */
export interface ExplainInput {
  events: CloudEvent[];
  /** The alerts of a batch the receiver would refuse one by one, named as its 400 names them. */
  refused?: string;
}

/**
 * Reads what `hollowtrees explain` is given, as bytes: a CloudEvent (or a JSON list of
 * them), an SQS message body the queue source reads (EventBridge, Auto Scaling,
 * SNS-wrapped; its region from `region` where the message names none), an
 * Alertmanager webhook payload, a list of Alertmanager API v2 postable alerts,
 * or one such alert. Each goes through the parser its source uses, so explain
 * refuses what that source refuses, with the same message (a body over the
 * receiver's `maxBodyBytes`, or not UTF-8, too), and takes what it takes: the valid alerts of
 * a batch whose other alerts are refused.
 */
export async function readExplainInput(input: Buffer, receivedAt: Date, limits: ReceiverLimits, region = 'unknown'): Promise<ExplainInput> {
  // Bytes, not text decoded leniently: what is not UTF-8 the receiver refuses (and an SQS message cannot hold).
  const text = await asExplainInput(() => utf8Text(input));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ExplainInputError(`not valid JSON: ${(err as Error).message}`);
  }
  const first = Array.isArray(json) ? json[0] : json;
  const notice = isObject(json) && isNotice(json);
  // The receiver answers a body over its limit 413 before reading a single alert or event of it; a queue's message is not held to it.
  if (!notice && input.length > limits.maxBodyBytes) throw new ExplainInputError(bodyTooLarge(limits.maxBodyBytes).message);
  if (isObject(first) && 'specversion' in first) {
    return { events: await asExplainInput(() => parseCloudEvents(Array.isArray(json) ? 'batch' : 'structured', {}, input, limits)) };
  }
  if (notice) {
    const outcome = noticeToEvents(text, { region });
    if (outcome.kind === 'events') return { events: [...outcome.events] };
    throw new ExplainInputError(`an SQS message the queue source would ${outcome.kind === 'ignored' ? 'delete without a run' : 'delete as unprocessable'}: ${outcome.reason}`);
  }
  const { format, body } = alertFormat(json);
  const notAnAlert = 'not a CloudEvent (no specversion), an SQS notice, nor an alert the receiver takes: ';
  const { events, refused } = await asExplainInput(() => parseAlerts(format, Buffer.from(JSON.stringify(body)), receivedAt, limits), notAnAlert);
  // The receiver answers an empty batch 200: explain, printing a line per event, would print nothing at all.
  if (events.length === 0 && refused.refused === 0) throw new ExplainInputError('holds no alert or event to explain (the receiver would answer it 200 and run nothing)');
  if (refused.refused === 0) return { events };
  const problems = problemsText(refused.problems, PROBLEMS_LISTED, refused.unlisted);
  if (events.length === 0) throw new ExplainInputError(`${notAnAlert}${problems}`);
  return { events, refused: `${problems} (${refused.refused} of ${refused.refused + events.length} alerts; the others are explained)` };
}
