import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CloudEvent } from './cloud-event.js';
import { eventFromProto, eventToProto, isJsonContentType } from './event-codec.js';
import { CloudEvent as ProtoCloudEvent } from './gen/hollowtrees/plugin/v1/plugin.js';
import { PluginClient } from './client.js';
import { serve, type PluginServer } from './serve.js';

const everyExtensionType: CloudEvent['extensions'] = {
  flag: { type: 'boolean', value: true },
  off: { type: 'boolean', value: false },
  count: { type: 'integer', value: -2147483648 },
  note: { type: 'string', value: 'grüße, 東京 🚀' },
  blob: { type: 'binary', value: new Uint8Array([0, 1, 254, 255]) },
  link: { type: 'uri', value: 'https://example.com/a?b=c' },
  rel: { type: 'uri-ref', value: '/relative/path#frag' },
  seen: { type: 'timestamp', value: '2026-11-25T10:00:00.123456789Z' },
};

const cases: Array<[string, CloudEvent]> = [
  [
    'unicode labels and annotations',
    {
      id: 'ü-1',
      source: 'prometheus://ex',
      specversion: '1.0',
      type: 'prometheus.server.alert.SpotTermination',
      time: '2026-11-25T10:00:00.5Z',
      subject: 'ノード-1',
      datacontenttype: 'application/json',
      data: { labels: { instance_id: 'i-0abc', emoji: '🔥', zh: '节点' }, annotations: { summary: 'Ça va\n"quoted"' } },
    },
  ],
  [
    '1 MiB of data',
    {
      id: 'big',
      source: 's',
      specversion: '1.0',
      type: 't',
      datacontenttype: 'application/json',
      data: { labels: { a: 'b' }, blob: 'x'.repeat(1024 * 1024) },
    },
  ],
  ['extensions of every attribute type', { id: 'ext', source: 's', specversion: '1.0', type: 't', dataschema: 'https://schema/x', extensions: everyExtensionType }],
  ['binary data', { id: 'bin', source: 's', specversion: '1.0', type: 't', datacontenttype: 'application/octet-stream', data: new Uint8Array([0, 255, 10, 13, 128]) }],
  ['plain text data', { id: 'txt', source: 's', specversion: '1.0', type: 't', datacontenttype: 'text/plain', data: '{not json' }],
  ['JSON under a +json type', { id: 'ce', source: 's', specversion: '1.0', type: 't', datacontenttype: 'application/cloudevents+json', data: { labels: { node: 'n1' } } }],
  ['JSON with a charset, in capitals', { id: 'cs', source: 's', specversion: '1.0', type: 't', datacontenttype: 'Application/JSON; charset=utf-8', data: ['a', 1] }],
  ['text/json', { id: 'tj', source: 's', specversion: '1.0', type: 't', datacontenttype: 'text/json', data: { n: 1 } }],
  ['a JSON string', { id: 'js', source: 's', specversion: '1.0', type: 't', datacontenttype: 'application/json', data: '{not an object' }],
  ['JSON data without a content type (JSON is the default)', { id: 'def', source: 's', specversion: '1.0', type: 't', data: { labels: { a: 'b' } } }],
  ['no data and no optional attributes', { id: 'min', source: 's', specversion: '1.0', type: 't' }],
];

describe('event codec', () => {
  it.each(cases)('round-trips %s through the protobuf bytes', (_name, event) => {
    const bytes = ProtoCloudEvent.encode(eventToProto(event)).finish();
    expect(eventFromProto(ProtoCloudEvent.decode(bytes))).toEqual(event);
  });

  it('writes time as a protobuf Timestamp keeping nanoseconds', () => {
    const proto = eventToProto({ id: '1', source: 's', specversion: '1.0', type: 't', time: '2026-01-02T03:04:05.000000007+01:00' });
    expect(proto.attributes.time?.attr).toEqual({ $case: 'ceTimestamp', value: { seconds: Date.UTC(2026, 0, 2, 2, 4, 5) / 1000, nanos: 7 } });
    expect(eventFromProto(proto).time).toBe('2026-01-02T02:04:05.000000007Z');
  });

  it('truncates fractional digits past nanoseconds, as RFC 3339 allows any number', () => {
    const proto = eventToProto({ id: '1', source: 's', specversion: '1.0', type: 't', time: `2026-01-02T03:04:05.1234567899${'9'.repeat(90)}Z` });
    expect(proto.attributes.time?.attr).toEqual({ $case: 'ceTimestamp', value: { seconds: Date.UTC(2026, 0, 2, 3, 4, 5) / 1000, nanos: 123_456_789 } });
  });

  it.each(['0000-12-31T23:59:59.999999999Z', '0001-01-01T00:30:00+01:00', '9999-12-31T23:00:00-05:00'])('rejects %s, outside a protobuf Timestamp\'s years 0001 to 9999 UTC', (time) => {
    expect(() => eventToProto({ id: '1', source: 's', specversion: '1.0', type: 't', time })).toThrow(`time outside years 0001 to 9999 UTC: "${time}"`);
  });

  it.each([
    [undefined, true],
    ['application/json', true],
    [' Application/JSON ; charset=utf-8', true],
    ['text/json', true],
    ['application/cloudevents+json', true],
    ['application/vnd.api+JSON', true],
    ['text/plain', false],
    ['application/octet-stream', false],
    ['application/json-seq', false],
    ['application/jsonx', false],
    ['application/+json+xml', false],
    ['text/plain; profile=application/json', false],
  ])('isJsonContentType(%j) is %s', (contentType, json) => {
    expect(isJsonContentType(contentType)).toBe(json);
  });

  it('text data under a JSON type that does not parse arrives as the text', () => {
    const proto = { ...eventToProto({ id: '1', source: 's', specversion: '1.0', type: 't', datacontenttype: 'application/json' }), data: { $case: 'textData' as const, value: '{"cut": ' } };
    expect(eventFromProto(proto).data).toBe('{"cut": ');
  });

  it('reads protobuf data as its type URL and bytes', () => {
    const proto = { ...eventToProto({ id: '1', source: 's', specversion: '1.0', type: 't' }), data: { $case: 'protoData' as const, value: { typeUrl: 'type.googleapis.com/x.Y', value: Buffer.from([8, 1]) } } };
    expect(eventFromProto(ProtoCloudEvent.decode(ProtoCloudEvent.encode(proto).finish())).data).toEqual({ typeUrl: 'type.googleapis.com/x.Y', value: new Uint8Array([8, 1]) });
  });

  it('rejects a time that is not RFC 3339, naming the value', () => {
    expect(() => eventToProto({ id: '1', source: 's', specversion: '1.0', type: 't', time: 'yesterday' })).toThrow(/not an RFC 3339 time: "yesterday"/);
  });
});

describe('event fields over real gRPC', () => {
  let server: PluginServer;
  let client: PluginClient;
  let received: CloudEvent | undefined;

  beforeAll(async () => {
    server = await serve(0, { handle: (event) => void (received = event) }, { host: '127.0.0.1' });
    client = new PluginClient(`127.0.0.1:${server.port}`);
  });
  afterAll(async () => {
    client.close();
    await server.close();
  });

  it.each(cases)('arrive exactly: %s', async (_name, event) => {
    received = undefined;
    await client.handle(event, { flow: 'f' });
    expect(received).toEqual(event);
  });
});
