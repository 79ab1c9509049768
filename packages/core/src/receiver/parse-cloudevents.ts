import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { isJsonContentType, type CloudEvent, type EventData } from '@hollowtrees/grpcplugin/without-grpc';
import { z } from 'zod';
import type { ReceiverLimits } from '../config/schema.js';
import { MAX_DATA_DEPTH } from '../json-depth.js';
import { safeParseWithInput } from '../validation-issues.js';
import { cloudEventSchema, extensionsOver, toCloudEvent } from './cloudevent-schema.js';
import { HttpError } from './http-error.js';
import { mediaTypeOf, unsupportedMediaType } from './media-type.js';
import { mapInSlices } from './slices.js';
import { badData, checkCount, checkId, checkLabelCount, checkLabels, parseJson, validate, validateEach } from './validate-body.js';

/** The HTTP binding's content modes: one event in the body, a JSON array of them, or data in the body and attributes in `ce-*` headers. */
export const CLOUDEVENT_MODES = ['structured', 'batch', 'binary'] as const;
/** One of {@link CLOUDEVENT_MODES}. */
export type CloudEventMode = (typeof CLOUDEVENT_MODES)[number];

const STRUCTURED = 'application/cloudevents+json';
const BATCH = 'application/cloudevents-batch+json';
const MODES_TAKEN = `${STRUCTURED} (structured mode), ${BATCH} (batch mode) or application/json with ce-* headers (binary mode)`;

/**
 * The request's mode, by its Content-Type: 415 for one no mode takes (no
 * Content-Type, another event format, data that is not JSON). Every type taken
 * needs a CORS preflight from a web page, as `ce-*` headers do. In binary mode,
 * 400 for a `ce-*` header sent more than once.
 */
export function cloudEventMode(req: IncomingMessage): CloudEventMode {
  const type = mediaTypeOf(req);
  if (type === STRUCTURED) return 'structured';
  if (type === BATCH) return 'batch';
  if (type !== undefined && !type.startsWith('application/cloudevents') && isJsonContentType(type)) {
    refuseRepeatedAttributes(req);
    return 'binary';
  }
  throw unsupportedMediaType(req, MODES_TAKEN);
}

/** Node joins a repeated header's values with ", ", so two `ce-id` headers would read as one id "a, b": refused, naming the header. */
function refuseRepeatedAttributes(req: IncomingMessage): void {
  for (const [header, values] of Object.entries(req.headersDistinct)) {
    if (header.startsWith('ce-') && values !== undefined && values.length > 1) {
      throw new HttpError(400, 'bad_data', `${header}: sent ${values.length} times: a binary-mode attribute takes one value`);
    }
  }
}

const batchSchema = z.array(z.unknown(), { error: 'expected a JSON array of events' });

/**
 * The deepest body of each mode, checked on its text before it is parsed. In binary mode the body is
 * the data. An event's other members are scalars, so a structured or batch body is a level or two
 * deeper than its data: one far deeper is refused unparsed, one just past the limit by the schema,
 * with a message naming the event and member.
 */
const MAX_BODY_DEPTH: Readonly<Record<CloudEventMode, number>> = { structured: 2 * MAX_DATA_DEPTH, batch: 2 * MAX_DATA_DEPTH, binary: MAX_DATA_DEPTH };

/** Binary-mode headers that are no attribute: the body is the data, Content-Type its type. */
const NOT_IN_HEADERS = new Set(['data', 'data_base64', 'datacontenttype']);

/** Where a binary-mode attribute came from, for a message: `ce-type`, `Content-Type`, `body.labels`. */
function headerPath([first, ...rest]: readonly PropertyKey[]): PropertyKey[] {
  const name = first === 'data' ? 'body' : first === 'datacontenttype' ? 'Content-Type' : `ce-${String(first)}`;
  return [name, ...rest];
}

/** The event a binary-mode request carries: attributes from the percent-encoded `ce-*` headers, `datacontenttype` from Content-Type, data from the body. */
function binaryEvent(headers: IncomingHttpHeaders, body: Buffer): unknown {
  const attributes: Array<[string, unknown]> = [];
  for (const [header, value] of Object.entries(headers)) {
    if (!header.startsWith('ce-') || typeof value !== 'string') continue;
    const name = header.slice(3);
    if (NOT_IN_HEADERS.has(name)) throw new HttpError(400, 'bad_data', `${header}: not a binary-mode header: the body is the data and Content-Type its type`);
    try {
      attributes.push([name, decodeURIComponent(value)]);
    } catch {
      throw new HttpError(400, 'bad_data', `${header}: not percent-encoded UTF-8`);
    }
  }
  // Most often a whole event sent with the plain JSON type: listing each ce-* header as required would not say so.
  if (attributes.length === 0) throw new HttpError(400, 'bad_data', `ce-* headers: none sent: Content-Type application/json is binary mode, where the attributes travel as ce-* headers and the body is the data; send a whole event as ${STRUCTURED}`);
  // fromEntries defines every key, so a `ce-__proto__` header is an own key the schema refuses, not a prototype.
  return Object.fromEntries([...attributes, ['datacontenttype', headers['content-type']], ['data', parseJson(body, MAX_BODY_DEPTH.binary)]]);
}

/**
 * 400 when the event `raw`, as parsed, carries more extension attributes or labels than `maxLabelsPerAlert`:
 * counted before the schema, which would validate and copy each first. `where` names the event, `labelsAt` its labels.
 */
function checkCounts(raw: unknown, limits: ReceiverLimits, where: string, labelsAt: string): void {
  const count = extensionsOver(raw, limits.maxLabelsPerAlert);
  if (count !== undefined) throw new HttpError(400, 'bad_data', `${where}: ${count} extension attributes, more than the limit of ${limits.maxLabelsPerAlert}`);
  const data: unknown = typeof raw === 'object' && raw !== null ? (raw as { data?: unknown }).data : undefined;
  checkLabelCount(typeof data === 'object' && data !== null ? (data as { labels?: unknown }).labels : undefined, limits, () => labelsAt);
}

/**
 * Validates a request body of `mode` and turns it into events. A batch is all
 * or nothing, validated a slice at a time: the first problem refuses the
 * request with a 400 naming the event's index and attribute (in binary mode the
 * header, or `body`).
 */
export async function parseCloudEvents(mode: CloudEventMode, headers: IncomingHttpHeaders, body: Buffer, limits: ReceiverLimits): Promise<Array<CloudEvent<EventData>>> {
  if (mode === 'batch') {
    const list = validate(batchSchema, parseJson(body, MAX_BODY_DEPTH.batch), []);
    checkCount(list.length, limits, 'events');
    list.forEach((raw, i) => checkCounts(raw, limits, `events[${i}]`, `events[${i}].data.labels`));
    const valid = await validateEach(cloudEventSchema, list, 'events');
    valid.forEach((event, i) => {
      checkId(event.id, limits, `events[${i}].id`);
      checkLabels(event.data.labels, limits, () => `events[${i}].data.labels`);
    });
    return mapInSlices(valid, (event, i) => toCloudEvent(event, list[i]));
  }
  const raw = mode === 'structured' ? parseJson(body, MAX_BODY_DEPTH.structured) : binaryEvent(headers, body);
  if (Array.isArray(raw)) throw new HttpError(400, 'bad_data', `body: a JSON array is a batch of events: send it as ${BATCH}`);
  checkCounts(raw, limits, mode === 'structured' ? 'event' : 'ce-* headers', mode === 'structured' ? 'data.labels' : 'body.labels');
  const parsed = safeParseWithInput(cloudEventSchema, raw);
  if (!parsed.success) throw badData(mode === 'structured' ? parsed.error.issues : parsed.error.issues.map((issue) => ({ ...issue, path: headerPath(issue.path) })), []);
  checkId(parsed.data.id, limits, mode === 'structured' ? 'id' : 'ce-id');
  checkLabels(parsed.data.data.labels, limits, () => (mode === 'structured' ? 'data.labels' : 'body.labels'));
  return [toCloudEvent(parsed.data, raw)];
}
