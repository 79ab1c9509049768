import { isJsonContentType, normalizeTime, SETTLED_FLOWS_ATTRIBUTE, type CloudEvent, type CloudEventExtension, type EventData } from '@hollowtrees/grpcplugin/without-grpc';
import { z } from 'zod';
import { MAX_DATA_DEPTH, nestedDeeperThan, TOO_DEEP } from '../json-depth.js';
import { refusingProtoKey, stringMap, time } from './field-schemas.js';

/** The attributes CloudEvents 1.0 defines (and the two data members of its JSON format); every other member is an extension. */
const DEFINED = new Set(['specversion', 'id', 'source', 'type', 'time', 'subject', 'datacontenttype', 'dataschema', 'data', 'data_base64']);
/** CloudEvents 1.0: attribute names are lower-case ASCII letters and digits. */
const ATTRIBUTE_NAME = /^[a-z0-9]+$/;
const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;

const NOT_A_NAME = 'not a CloudEvents attribute name: lower-case letters a-z and digits only';

const nonEmpty = z.string().min(1, 'must not be empty');

/** A sender's value, shortened, for a message. */
const shown = (value: unknown): string => JSON.stringify(value)?.slice(0, 100) ?? String(value);

/**
 * Every Hollowtrees event's data: a JSON object with a string map `labels`, plus
 * whatever else the sender puts there. Validated only: the event keeps the
 * sender's object as it is (see {@link toCloudEvent}).
 */
const eventData = z.preprocess(
  (input, ctx) => {
    // The event keeps this object as sent: what nests too deep for the code that later walks it is refused here.
    if (nestedDeeperThan(input, MAX_DATA_DEPTH)) ctx.addIssue({ code: 'custom', message: TOO_DEEP, input: undefined });
    return input;
  },
  z.object({ labels: stringMap }, { error: 'expected a JSON object with a string map "labels"' }),
);

/**
 * The most flows an event may name in {@link SETTLED_FLOWS_ATTRIBUTE}. A sender names those of one core's that acted on
 * it; without a bound, a 1 MiB value of `%zz,` repeated (262,144 names, each failing to decode) held the event loop ~0.8 s.
 */
const MAX_SETTLED_FLOWS = 1_000;

/** What is wrong with `value` as {@link SETTLED_FLOWS_ATTRIBUTE}'s value, if anything. */
function settledFlowsProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'expected a string: the names of flows, each percent-encoded, joined by commas';
  // Commas counted up to the bound only: the value is not split (nor its names decoded) before it is known to be short enough.
  let names = 1;
  for (let at = value.indexOf(','); at !== -1; at = value.indexOf(',', at + 1)) {
    if (++names > MAX_SETTLED_FLOWS) return `names more flows than the limit of ${MAX_SETTLED_FLOWS}`;
  }
  return undefined;
}

/** An extension's value in the JSON format: a string, a boolean or a 32-bit integer (CloudEvents has no other JSON-native type). */
function extensionOf(value: unknown): CloudEventExtension | undefined {
  if (typeof value === 'string') return { type: 'string', value };
  if (typeof value === 'boolean') return { type: 'boolean', value };
  if (Number.isInteger(value) && (value as number) >= INT32_MIN && (value as number) <= INT32_MAX) return { type: 'integer', value: value as number };
  return undefined;
}

/**
 * One event in the CloudEvents 1.0 JSON format, as Hollowtrees takes it:
 * `specversion` "1.0"; `id`, `source` and `type` non-empty; `time` RFC 3339;
 * data JSON (no `data_base64`) and an object with a `labels` map; extension
 * names of lower-case letters and digits, with string, boolean or 32-bit
 * integer values; `hollowtreessettled` a string naming at most 1,000 flows.
 */
export const cloudEventSchema = refusingProtoKey(
  z
    .looseObject({
      specversion: z.literal('1.0', { error: (issue) => (issue.input === undefined ? 'required (expected "1.0")' : `expected "1.0" (CloudEvents 1.0), got ${shown(issue.input)}`) }),
      id: nonEmpty,
      source: nonEmpty,
      type: nonEmpty,
      time: time.optional(),
      subject: nonEmpty.optional(),
      datacontenttype: z.string().refine(isJsonContentType, 'the data must be JSON: expected application/json or a +json media type').optional(),
      dataschema: nonEmpty.optional(),
      data: eventData,
      data_base64: z.undefined({ error: 'binary data is not taken: send "data" as a JSON object with a string map "labels"' }).optional(),
    })
    .superRefine((event, ctx) => {
      for (const [name, value] of Object.entries(event)) {
        if (DEFINED.has(name)) continue;
        if (!ATTRIBUTE_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: NOT_A_NAME });
        else if (!extensionOf(value)) ctx.addIssue({ code: 'custom', path: [name], message: `an extension attribute must be a string, a boolean or a 32-bit integer, got ${shown(value)}` });
        else if (name === SETTLED_FLOWS_ATTRIBUTE) {
          // Refused rather than ignored: ignored, the flows it means to name would act on the re-send again.
          const problem = settledFlowsProblem(value);
          if (problem) ctx.addIssue({ code: 'custom', path: [name], message: problem });
        }
      }
    }),
  () => NOT_A_NAME,
);

/**
 * How many extension attributes `raw` (an event as parsed, not yet validated) carries beyond `max`, if more:
 * counted before the schema, which would validate, copy and type each (90,000 took the event loop 1.5 s),
 * and every plugin call and the journal would carry them all.
 */
export function extensionsOver(raw: unknown, max: number): number | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  let count = 0;
  for (const name in raw) if (!DEFINED.has(name)) count++;
  return count > max ? count : undefined;
}

/** An event {@link cloudEventSchema} passed. */
export type ValidCloudEvent = z.output<typeof cloudEventSchema>;

/**
 * The event core hands to the flows: the sender's attributes (times normalised
 * to UTC), extensions typed, and the sender's `data` object as it was parsed
 * (`raw` is what {@link cloudEventSchema} validated into `valid`): zod's copy
 * would keep only `labels`.
 */
export function toCloudEvent(valid: ValidCloudEvent, raw: unknown): CloudEvent<EventData> {
  const { specversion, id, source, type, time: at, subject, datacontenttype, dataschema, data: _labels, data_base64: _binary, ...rest } = valid;
  const extensions: Record<string, CloudEventExtension> = {};
  for (const [name, value] of Object.entries(rest)) extensions[name] = extensionOf(value)!;
  return {
    specversion,
    id,
    source,
    type,
    ...(at === undefined ? {} : { time: normalizeTime(at) }),
    ...(subject === undefined ? {} : { subject }),
    datacontenttype: datacontenttype ?? 'application/json',
    ...(dataschema === undefined ? {} : { dataschema }),
    data: (raw as { data: EventData }).data,
    ...(Object.keys(extensions).length > 0 ? { extensions } : {}),
  };
}
