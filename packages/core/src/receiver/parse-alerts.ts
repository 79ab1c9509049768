import { rememberingRecent, type CloudEvent } from '@hollowtrees/grpcplugin';
import type { ReceiverLimits } from '../config/schema.js';
import { alertArraySchema, postableAlertSchema, webhookAlertSchema, webhookEnvelopeSchema, type PostableAlert } from './alert-schemas.js';
import { alertToEvent, statusFromEndsAt, type AlertEventData, type ReceivedAlert } from './alert-to-event.js';
import { mapInSlices } from './slices.js';
import { checkCount, checkLabels, parseJson, validate, validateEach } from './validate-body.js';

/** The alert formats the receiver reads. */
export type AlertFormat = 'api_v2' | 'api_v1' | 'webhook';

const DEFAULT_SOURCE = 'urn:hollowtrees:receiver';

/**
 * The origin of a URL (`http://prometheus:9090`), the CloudEvents source of what it generated.
 * Remembered: the alerts of one rule share their URL, and parsing one costs more than the rest of an alert's source.
 */
const originOf = rememberingRecent((url: string): string | undefined => {
  if (!url) return undefined;
  try {
    const origin = new URL(url).origin;
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}, 256);

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
    checkCount(payload.alerts.length, limits, 'alerts');
    alerts = await validateEach(webhookAlertSchema, payload.alerts, 'alerts');
    const external = originOf(payload.externalURL) ?? DEFAULT_SOURCE;
    source = () => external;
  } else {
    // Count before validating, so an oversized batch costs no validation work.
    const list = validate(alertArraySchema, json, ['alerts']);
    checkCount(list.length, limits, 'alerts');
    // zod's output is this request's own copy: the status is set on it, not on a second copy.
    const valid: Array<PostableAlert & Partial<ReceivedAlert>> = await validateEach(postableAlertSchema, list, 'alerts');
    for (const alert of valid) alert.status = statusFromEndsAt(alert.endsAt, receivedAt);
    alerts = valid as ReceivedAlert[];
    source = (alert) => originOf(alert.generatorURL) ?? DEFAULT_SOURCE;
  }
  alerts.forEach((alert, i) => checkLabels(alert.labels, limits, () => `alerts[${i}].labels`));
  return mapInSlices(alerts, (alert) => alertToEvent(alert, receivedAt, source(alert)));
}
