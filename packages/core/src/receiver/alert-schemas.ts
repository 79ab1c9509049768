import { z } from 'zod';
import { stringMapSchema, time } from './field-schemas.js';

/** Go's zero time, which Alertmanager writes for "not set". */
const GO_ZERO_TIME = /^0001-01-01T00:00:00/;
/** `schema`, taking `null` as absent: Alertmanager 0.25 (Go's encoding/json) reads a null field as unset. */
const nullAsAbsent = <S extends z.ZodType>(schema: S): z.ZodPreprocess<S, unknown> => z.preprocess((v) => (v === null ? undefined : v), schema);

/**
 * A time that may be unset: absent, `null`, `""` or Go's zero time. `""` is taken as absent before the time's
 * schema, not as a union's other branch: a union refusing a number named its `""` branch
 * (`Invalid input: expected ""`), not the time expected.
 */
const optionalTime = z.preprocess((v) => (v === '' || v === null ? undefined : v), time.optional()).transform((v) => (v === undefined || GO_ZERO_TIME.test(v) ? undefined : v));

/**
 * `map` with each entry whose value `replace` changes written anew (`undefined`: left out); `map` itself
 * when none changes, so an alert as Prometheus sends it is not copied. Object.fromEntries keeps a
 * `__proto__` key an own key, for the schema to refuse.
 */
function rewritingValues(map: unknown, replace: (value: unknown) => unknown): unknown {
  if (typeof map !== 'object' || map === null || Array.isArray(map)) return map;
  const entries = map as Record<string, unknown>;
  let changes = false;
  for (const name in entries) if (replace(entries[name]) !== entries[name]) changes = true;
  if (!changes) return map;
  return Object.fromEntries(Object.entries(entries).flatMap(([name, value]) => {
    const kept = replace(value);
    return kept === undefined ? [] : [[name, kept]];
  }));
}

/**
 * Alertmanager 0.25 (Go's encoding/json) reads a null label value as `""`, and drops every empty label:
 * to Prometheus an empty label is an absent one. So `x: null`, `x: ""` and no `x` are one alert, with one
 * id and fingerprint, and two posts of it cannot start two runs.
 */
const withoutEmptyLabels = (map: unknown): unknown => rewritingValues(map, (value) => (value === null || value === '' ? undefined : value));
/** Alertmanager 0.25 reads a null annotation value as `""` and keeps it. */
const nullAnnotationsAsEmpty = (map: unknown): unknown => rewritingValues(map, (value) => (value === null ? '' : value));

const labels = stringMapSchema(withoutEmptyLabels).refine((l) => typeof l.alertname === 'string' && l.alertname !== '', {
  message: 'required: labels.alertname',
  path: ['alertname'],
});

/**
 * Alertmanager API v2 `postableAlert` (also the legacy v1 body): what
 * Prometheus sends to an alertmanager. Unknown fields are ignored; `null`
 * optional fields are unset, as Alertmanager takes them.
 */
export const postableAlertSchema = z.object({
  labels,
  annotations: nullAsAbsent(stringMapSchema(nullAnnotationsAsEmpty).optional().default({})),
  startsAt: optionalTime,
  endsAt: optionalTime,
  generatorURL: nullAsAbsent(z.string().optional().default('')),
});

/** The v2/v1 body: an array of alerts, each validated on its own with {@link postableAlertSchema}. */
export const alertArraySchema = z.array(z.unknown(), { error: 'expected a JSON array of alerts' });

/** One alert inside an Alertmanager webhook payload (version 4). */
export const webhookAlertSchema = postableAlertSchema.extend({
  status: z.enum(['firing', 'resolved']),
  fingerprint: z.string().optional().default(''),
});

/** The Alertmanager webhook receiver payload, version 4; its alerts are validated on their own with {@link webhookAlertSchema}. */
export const webhookEnvelopeSchema = z.object(
  {
  version: z.literal('4', { error: 'expected version "4" (Alertmanager webhook payload)' }),
  groupKey: z.string().optional().default(''),
  externalURL: z.string().optional().default(''),
  alerts: z.array(z.unknown()),
  /** Alerts of the group `max_alerts` left out of the payload. Only told, never a reason to refuse the alerts that came. */
  truncatedAlerts: z.number().int().min(0).catch(0),
  },
  { error: 'expected an Alertmanager webhook payload, a JSON object with version "4" (a JSON array of alerts goes to /api/v2/alerts)' },
);

export type PostableAlert = z.output<typeof postableAlertSchema>;
export type WebhookAlert = z.output<typeof webhookAlertSchema>;
