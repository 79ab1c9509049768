/**
 * A typed CloudEvents extension attribute. The `type` keeps the CloudEvents
 * attribute type, so an event converts to protobuf and back without loss.
 */
export type CloudEventExtension =
  | { readonly type: 'boolean'; readonly value: boolean }
  | { readonly type: 'integer'; readonly value: number }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'binary'; readonly value: Uint8Array }
  | { readonly type: 'uri'; readonly value: string }
  | { readonly type: 'uri-ref'; readonly value: string }
  /** RFC 3339, normalised to UTC with up to nanosecond precision. */
  | { readonly type: 'timestamp'; readonly value: string };

/**
 * A CloudEvents 1.0 event as plugins and core see it.
 *
 * `data` is the parsed JSON value when `datacontenttype` is JSON (the default for
 * Hollowtrees events), a string for other text, and a `Uint8Array` for binary data.
 * Every Hollowtrees event carries a JSON object with a string map `labels`:
 * read it with {@link labelsOf}.
 */
export interface CloudEvent<D = unknown> {
  /** Unique within `source`; a re-sent signal keeps its id. */
  id: string;
  /** URI-reference of what produced the event. */
  source: string;
  /** Always "1.0". */
  specversion: string;
  /** E.g. `prometheus.server.alert.SpotTerminating`. */
  type: string;
  /** RFC 3339 time the occurrence happened, normalised to UTC. */
  time?: string;
  /** What the event is about within `source`, when the source says (CloudEvents `subject`). */
  subject?: string;
  /** The media type of `data`: `application/json` for every event Hollowtrees makes. */
  datacontenttype?: string;
  /** URI of the schema `data` follows, when the source names one. */
  dataschema?: string;
  /**
   * The payload: the parsed JSON value when `datacontenttype` is JSON (for every Hollowtrees event an
   * object with `labels`, see {@link EventData}), a string for other text, a `Uint8Array` for binary.
   */
  data?: D;
  /** Extension attributes by name (lower-case CloudEvents attribute names). */
  extensions?: Record<string, CloudEventExtension>;
}

/** The shape of `data` on every Hollowtrees event: labels plus source-specific fields. */
export interface EventData {
  /** What the event is about: `instance_id`, `node`, `region`, `availability_zone`, ..., plus attributes earlier plugins of the run returned. */
  labels: Record<string, string>;
  [field: string]: unknown;
}

/**
 * Returns the event's `data.labels` (what the event is about: `instance_id`,
 * `node`, `region`, ...), or an empty object when the event has none.
 * Non-string label values are left out.
 */
export function labelsOf(event: CloudEvent): Record<string, string> {
  const data = event.data;
  if (typeof data !== 'object' || data === null || !('labels' in data)) return {};
  const labels = (data as { labels: unknown }).labels;
  if (typeof labels !== 'object' || labels === null) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) if (typeof v === 'string') out[k] = v;
  return out;
}
