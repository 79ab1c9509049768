import type { CloudEvent, CloudEventExtension } from './cloud-event.js';
import type {
  CloudEvent as ProtoCloudEvent,
  CloudEvent_CloudEventAttributeValue as ProtoAttribute,
} from './gen/hollowtrees/plugin/v1/plugin.js';
import { timestampFromString, timestampFromStringShared, timestampToString } from './timestamp.js';

type Attr = NonNullable<ProtoAttribute['attr']>;

/** Optional CloudEvents attributes that have their own field on the TS event. */
const STRING_ATTRIBUTES = ['subject', 'datacontenttype'] as const;

/** True for `application/json` and `*+json` media types, the ones whose data is parsed. */
export function isJsonContentType(contentType: string | undefined): boolean {
  // What core and most senders write, answered without taking it apart.
  if (contentType === undefined || contentType === 'application/json') return true;
  const media = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return media === 'application/json' || media === 'text/json' || media.endsWith('+json');
}

function extensionToAttr(ext: CloudEventExtension): Attr {
  switch (ext.type) {
    case 'boolean': return { $case: 'ceBoolean', value: ext.value };
    case 'integer': return { $case: 'ceInteger', value: ext.value };
    case 'string': return { $case: 'ceString', value: ext.value };
    case 'binary': return { $case: 'ceBytes', value: Buffer.from(ext.value) };
    case 'uri': return { $case: 'ceUri', value: ext.value };
    case 'uri-ref': return { $case: 'ceUriRef', value: ext.value };
    case 'timestamp': return { $case: 'ceTimestamp', value: timestampFromString(ext.value) };
  }
}

function attrToExtension(attr: Attr): CloudEventExtension {
  switch (attr.$case) {
    case 'ceBoolean': return { type: 'boolean', value: attr.value };
    case 'ceInteger': return { type: 'integer', value: attr.value };
    case 'ceString': return { type: 'string', value: attr.value };
    case 'ceBytes': return { type: 'binary', value: new Uint8Array(attr.value) };
    case 'ceUri': return { type: 'uri', value: attr.value };
    case 'ceUriRef': return { type: 'uri-ref', value: attr.value };
    case 'ceTimestamp': return { type: 'timestamp', value: timestampToString(attr.value) };
  }
}

/** The string form of an attribute whatever its protobuf type (for time, subject, ...). */
function attrAsString(attr: Attr): string {
  const ext = attrToExtension(attr);
  return ext.type === 'binary' ? Buffer.from(ext.value).toString('base64') : String(ext.value);
}

/** Converts a TS event to the CloudEvents protobuf message. Its `time` Timestamp is shared by every event of that time and frozen: read it, never change it. */
export function eventToProto(event: CloudEvent): ProtoCloudEvent {
  const attributes: Record<string, ProtoAttribute> = {};
  const { extensions } = event;
  if (extensions) for (const name in extensions) attributes[name] = { attr: extensionToAttr(extensions[name]!) };
  if (event.time !== undefined) attributes.time = { attr: { $case: 'ceTimestamp', value: timestampFromStringShared(event.time) } };
  for (const name of STRING_ATTRIBUTES) {
    const value = event[name];
    if (value !== undefined) attributes[name] = { attr: { $case: 'ceString', value } };
  }
  if (event.dataschema !== undefined) attributes.dataschema = { attr: { $case: 'ceUri', value: event.dataschema } };

  let data: ProtoCloudEvent['data'];
  if (event.data instanceof Uint8Array) data = { $case: 'binaryData', value: Buffer.from(event.data) };
  else if (event.data === undefined) data = undefined;
  else if (typeof event.data === 'string' && !isJsonContentType(event.datacontenttype)) data = { $case: 'textData', value: event.data };
  else data = { $case: 'textData', value: JSON.stringify(event.data) };

  return { id: event.id, source: event.source, specVersion: event.specversion, type: event.type, attributes, data };
}

/** Converts the CloudEvents protobuf message to a TS event; JSON text data is parsed. */
export function eventFromProto(message: ProtoCloudEvent): CloudEvent {
  const event: CloudEvent = { id: message.id, source: message.source, specversion: message.specVersion, type: message.type };
  const extensions: Record<string, CloudEventExtension> = {};
  for (const [name, value] of Object.entries(message.attributes)) {
    if (!value.attr) continue;
    if (name === 'time') event.time = attrAsString(value.attr);
    else if (name === 'subject' || name === 'datacontenttype' || name === 'dataschema') event[name] = attrAsString(value.attr);
    else extensions[name] = attrToExtension(value.attr);
  }
  if (Object.keys(extensions).length > 0) event.extensions = extensions;

  const data = message.data;
  if (data?.$case === 'binaryData') event.data = new Uint8Array(data.value);
  else if (data?.$case === 'protoData') event.data = { typeUrl: data.value.typeUrl, value: new Uint8Array(data.value.value) };
  else if (data?.$case === 'textData') event.data = isJsonContentType(event.datacontenttype) ? parseJsonOrText(data.value) : data.value;
  return event;
}

function parseJsonOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text; // a sender that mislabelled text as JSON still gets its data through
  }
}
