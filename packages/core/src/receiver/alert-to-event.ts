import { hash } from 'node:crypto';
import { normalizeTime, type CloudEvent } from '@hollowtrees/grpcplugin/without-grpc';

/** The `data` of an event made from a Prometheus alert. */
export interface AlertEventData {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  status: 'firing' | 'resolved';
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
  [field: string]: unknown;
}

/** An alert as every receiver path normalises it before it becomes an event. */
export interface ReceivedAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  status: 'firing' | 'resolved';
  startsAt: string | undefined;
  endsAt: string | undefined;
  generatorURL: string;
  /** Set by Alertmanager; computed from the labels when absent. */
  fingerprint?: string;
}

/** The event type prefix for Prometheus alerts. */
export const ALERT_TYPE_PREFIX = 'prometheus.server.alert.';

/**
 * The `type` label of `hollowtrees_events_received_total` for an alert: its
 * type with the sender-chosen alert name as `*` (`prometheus.server.alert.*`,
 * `prometheus.server.alert.*.resolved`), so the series stay a fixed set
 * whatever names senders make up.
 */
export function alertTypeFamily(status: AlertEventData['status']): string {
  return `${ALERT_TYPE_PREFIX}*${status === 'resolved' ? '.resolved' : ''}`;
}

/** A stable 16-hex-digit fingerprint of a label set, independent of key order. */
export function labelsFingerprint(labels: Record<string, string>): string {
  // Prometheus sends label sets sorted by name: those are read in place, with no key array to sort.
  let text = '';
  let previous = '';
  for (const key in labels) {
    if (key < previous) {
      text = '';
      for (const sorted of Object.keys(labels).sort()) text += labelText(sorted, labels[sorted]!);
      break;
    }
    previous = key;
    text += labelText(key, labels[key]!);
  }
  return sha256Hex(text, 16);
}

/** One label as the fingerprint reads it: length-prefixed, so no value can imitate a separator and make two label sets collide. */
function labelText(name: string, value: string): string {
  return `${name.length}:${name}${value.length}:${value}`;
}

/**
 * The first `digits` hex digits of the SHA-256 of `text`. The hex digest as a string is one call that
 * makes no Buffer: 0.4 µs against 1.4 µs for the digest as a Buffer written as hex. The slice keeps
 * the whole digest alive while it is held (a cooling group holds its event's id): ~64 B more for an
 * alert parsed on the event loop (a POST under 8 KiB), none for a batch's, whose events cross from the
 * parse thread as JSON text, every string made anew.
 */
function sha256Hex(text: string, digits: number): string {
  return hash('sha256', text, 'hex').slice(0, digits);
}

/**
 * Turns an alert into a CloudEvent. The id hashes the labels and `startsAt`, so
 * a re-sent alert (by Prometheus, or by Alertmanager for the same occurrence) is
 * the same event.
 */
export function alertToEvent(alert: ReceivedAlert, receivedAt: Date, source: string): CloudEvent<AlertEventData> {
  const startsAt = alert.startsAt === undefined ? undefined : normalizeTime(alert.startsAt);
  const labelsHash = labelsFingerprint(alert.labels);
  const resolved = alert.status === 'resolved';
  // The id ignores Alertmanager's fingerprint so one alert has one id on every receiver path;
  // the resolution is another event than the firing it ends (CloudEvents: source + id unique).
  const id = sha256Hex(`${labelsHash}@${startsAt ?? ''}${resolved ? '#resolved' : ''}`, 32);
  return {
    id,
    source,
    specversion: '1.0',
    type: `${ALERT_TYPE_PREFIX}${alert.labels.alertname}${resolved ? '.resolved' : ''}`,
    time: startsAt ?? normalizeTime(receivedAt.toISOString()),
    datacontenttype: 'application/json',
    data: {
      labels: alert.labels,
      annotations: alert.annotations,
      status: alert.status,
      startsAt: startsAt ?? '',
      endsAt: alert.endsAt === undefined ? '' : normalizeTime(alert.endsAt),
      generatorURL: alert.generatorURL,
      fingerprint: alert.fingerprint || labelsHash,
    },
  };
}

/** The v2/v1 body has no status: an alert whose `endsAt` is not after receipt is resolved. */
export function statusFromEndsAt(endsAt: string | undefined, receivedAt: Date): 'firing' | 'resolved' {
  return endsAt !== undefined && Date.parse(endsAt) <= receivedAt.getTime() ? 'resolved' : 'firing';
}
