import { rememberingRecent, type CloudEvent } from '@hollowtrees/grpcplugin/without-grpc';
import type { ReceiverLimits } from '../config/schema.js';
import { alertArraySchema, postableAlertSchema, webhookAlertSchema, webhookEnvelopeSchema, type PostableAlert } from './alert-schemas.js';
import { alertToEvent, statusFromEndsAt, type AlertEventData, type ReceivedAlert } from './alert-to-event.js';
import { mapInSlices } from './slices.js';
import { checkCount, labelCountProblem, labelsProblem, parseJson, validate, validateItems, type ValidatedItems } from './validate-body.js';

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
 * The deepest alert body parsed: 10,000 levels, the most Go's encoding/json (and so Alertmanager's
 * own API, and the webhook payloads it builds) takes. Fields core does not know are ignored up to
 * it, as Alertmanager ignores them; a body Alertmanager would refuse as too deep is refused too.
 * JSON.parse holds its thread ~0.3 µs a level in one block, whatever `maxBodyBytes` allows (a 64 MiB
 * body of `[` would take 20 s); at this bound, about 3 ms.
 */
export const MAX_ALERT_BODY_DEPTH = 10_000;

/** Alerts of one Alertmanager group its webhook payload does not carry (`truncatedAlerts`). */
export interface LeftOut {
  count: number;
  /** The payload's `groupKey`. */
  group: string;
}

/** A request's alerts as events, how many of its alerts were refused, and why, and what the sender left out. */
export interface ParsedAlerts {
  events: Array<CloudEvent<AlertEventData>>;
  refused: Omit<ValidatedItems<unknown>, 'valid'>;
  leftOut?: LeftOut;
}

/** An alert's label limits, checked once zod has taken it. */
const withinLimits = (limits: ReceiverLimits) => (alert: { labels: Record<string, string> }, i: number) => labelsProblem(alert.labels, limits, () => `alerts[${i}].labels`);
/**
 * An alert's label and annotation counts, checked before zod validates every entry. Annotations are
 * bounded like labels: each event carries them to every plugin call and into the journal.
 */
const notTooManyLabels = (limits: ReceiverLimits) => (alert: unknown, i: number) => {
  if (typeof alert !== 'object' || alert === null) return undefined;
  const { labels, annotations } = alert as { labels?: unknown; annotations?: unknown };
  return labelCountProblem(labels, limits, () => `alerts[${i}].labels`) ?? labelCountProblem(annotations, limits, () => `alerts[${i}].annotations`, 'annotations');
};

/**
 * Validates a request body and turns every valid alert into a CloudEvent, a
 * slice of alerts at a time so that a large batch lets the event loop turn.
 * Each alert is judged on its own, as Alertmanager does: one the receiver
 * refuses (its index and field named in `refused`) does not cost the rest of
 * its batch, which Prometheus fills with whatever alerts its rules fire. What
 * is wrong with the request itself (not JSON, nested more than
 * {@link MAX_ALERT_BODY_DEPTH} levels, not a list of alerts, too many of them)
 * refuses it whole with a 4xx.
 */
export async function parseAlerts(format: AlertFormat, body: Buffer, receivedAt: Date, limits: ReceiverLimits): Promise<ParsedAlerts> {
  const json = parseJson(body, MAX_ALERT_BODY_DEPTH);
  let checked: ValidatedItems<ReceivedAlert>;
  let source: (alert: ReceivedAlert) => string;
  let leftOut: LeftOut | undefined;
  if (format === 'webhook') {
    const payload = validate(webhookEnvelopeSchema, json, []);
    if (payload.truncatedAlerts > 0) leftOut = { count: payload.truncatedAlerts, group: payload.groupKey };
    checkCount(payload.alerts.length, limits, 'alerts');
    checked = await validateItems(webhookAlertSchema, payload.alerts, 'alerts', withinLimits(limits), notTooManyLabels(limits));
    const external = originOf(payload.externalURL) ?? DEFAULT_SOURCE;
    source = () => external;
  } else {
    // Count before validating, so an oversized batch costs no validation work.
    const list = validate(alertArraySchema, json, ['alerts']);
    checkCount(list.length, limits, 'alerts');
    // zod's output is this request's own copy: the status is set on it, not on a second copy.
    const postable: ValidatedItems<PostableAlert & Partial<ReceivedAlert>> = await validateItems(postableAlertSchema, list, 'alerts', withinLimits(limits), notTooManyLabels(limits));
    for (const alert of postable.valid) alert.status = statusFromEndsAt(alert.endsAt, receivedAt);
    checked = postable as ValidatedItems<ReceivedAlert>;
    source = (alert) => originOf(alert.generatorURL) ?? DEFAULT_SOURCE;
  }
  const { valid, ...refused } = checked;
  return { events: await mapInSlices(valid, (alert) => alertToEvent(alert, receivedAt, source(alert))), refused, ...(leftOut && { leftOut }) };
}
