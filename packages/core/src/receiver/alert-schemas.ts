import { normalizeTime } from '@hollowtrees/grpcplugin';
import { z } from 'zod';

/** Label and annotation maps: string values only, as Prometheus sends them. */
const stringMap = z.record(z.string(), z.string({ error: 'expected a string value' }));

/** Whether a time fits a protobuf Timestamp, as every event time must to reach a plugin. */
function fitsTimestamp(time: string): boolean {
  try {
    normalizeTime(time);
    return true;
  } catch {
    return false;
  }
}

/** RFC 3339 (zod checks the calendar; any number of fractional digits, kept to nanoseconds) within years 0001-9999 UTC. */
const time = z.iso
  .datetime({ offset: true, local: false, error: 'expected an RFC 3339 time' })
  // Only once the format passed, so a malformed time gets one message.
  .refine(fitsTimestamp, { message: 'expected an RFC 3339 time between years 0001 and 9999 UTC', when: (payload) => payload.issues.length === 0 });

/** Go's zero time, which Alertmanager writes for "not set". */
const GO_ZERO_TIME = /^0001-01-01T00:00:00/;
const optionalTime = z.union([time, z.literal('')]).optional().transform((v) => (v === '' || v === undefined || GO_ZERO_TIME.test(v) ? undefined : v));

const labels = stringMap.refine((l) => typeof l.alertname === 'string' && l.alertname !== '', {
  message: 'required: labels.alertname',
  path: ['alertname'],
});

/**
 * Alertmanager API v2 `postableAlert` (also the legacy v1 body): what
 * Prometheus sends to an alertmanager. Unknown fields are ignored.
 */
export const postableAlertSchema = z.object({
  labels,
  annotations: stringMap.optional().default({}),
  startsAt: optionalTime,
  endsAt: optionalTime,
  generatorURL: z.string().optional().default(''),
});

export const postableAlertsSchema = z.array(postableAlertSchema, { error: 'expected a JSON array of alerts' });

/** One alert inside an Alertmanager webhook payload (version 4). */
const webhookAlertSchema = postableAlertSchema.extend({
  status: z.enum(['firing', 'resolved']),
  fingerprint: z.string().optional().default(''),
});

/** The Alertmanager webhook receiver payload, version 4. */
export const webhookPayloadSchema = z.object({
  version: z.literal('4', { error: 'expected version "4" (Alertmanager webhook payload)' }),
  groupKey: z.string().optional().default(''),
  externalURL: z.string().optional().default(''),
  alerts: z.array(webhookAlertSchema),
});

export type PostableAlert = z.output<typeof postableAlertSchema>;
export type WebhookAlert = z.output<typeof webhookAlertSchema>;
export type WebhookPayload = z.output<typeof webhookPayloadSchema>;
