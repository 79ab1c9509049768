/**
 * CloudEvents over HTTP (`POST /api/v1/events`), over real HTTP into a real
 * gRPC plugin: the three content modes, every spec violation a 400 naming the
 * attribute, and the alert paths' rules (auth, limits, 503s, metrics) on this
 * path too. Durability (200 only once the run is on disk) and the 503 while the
 * disk is full are in lifecycle.test.ts, with a real process.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labelsOf, type CloudEvent } from '@hollowtrees/grpcplugin';
import { startKubeApiServer } from '@hollowtrees/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { readFixture } from '../../test/support/fixtures.js';
import { seededRandom } from '../../test/support/seeded-random.js';
import { startRecordingPlugin, type RecordingPlugin } from '../../test/support/recording-plugin.js';
import { startTestCore, type TestCore } from '../../test/support/start-core.js';
import { cloudEventSchema } from './cloudevent-schema.js';

const PATH = '/api/v1/events';
const TYPE = 'com.example.spot.interruption';
const STRUCTURED = { 'content-type': 'application/cloudevents+json' };
const BATCH = { 'content-type': 'application/cloudevents-batch+json' };

const config = (plugin: string, server = '', flow = '') => `
server:
  limits: { maxBodyBytes: 8192, maxAlertsPerRequest: 5, maxLabelsPerAlert: 5, maxLabelLength: 64, maxConcurrentRequests: 1 }
${server}
plugins:
  rec: { type: grpc, address: "${plugin}", timeout: 5s, retry: { attempts: 1 } }
flows:
  spot:
    allowedEvents: [${TYPE}]
    groupBy: [instance_id]
    cooldown: 1h
    plugins: [rec]
${flow}
`;

/** A valid structured-mode event about `instance`. */
const event = (instance: string, fields: Record<string, unknown> = {}): Record<string, unknown> => ({
  specversion: '1.0',
  id: `ev-${instance}`,
  source: '/tests',
  type: TYPE,
  data: { labels: { instance_id: instance } },
  ...fields,
});
/** Event data whose member `deep` nests `levels` objects, so the data itself is `levels + 1` deep. */
const deepData = (levels: number): Record<string, unknown> => ({ labels: { instance_id: `i-deep-${levels}` }, deep: JSON.parse('{"a":'.repeat(levels) + '1' + '}'.repeat(levels)) as unknown });
const without = (value: Record<string, unknown>, key: string): Record<string, unknown> => Object.fromEntries(Object.entries(value).filter(([k]) => k !== key));

/** The headers of a valid binary-mode event about `instance` (its body: {@link binaryBody}). */
const binaryHeaders = (instance: string, headers: Record<string, string> = {}): Record<string, string> => ({
  'content-type': 'application/json',
  'ce-specversion': '1.0',
  'ce-id': `bin-${instance}`,
  'ce-source': '/tests',
  'ce-type': TYPE,
  ...headers,
});
const binaryBody = (instance: string): string => JSON.stringify({ labels: { instance_id: instance } });

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: { status?: string; errorType?: string; error?: string; accepted?: number };
}

/** A POST (or another method) through node:http, with exactly the headers given (a list: the header sent once per value). */
function send(core: TestCore, body: unknown, headers: Record<string, string | string[]>, method = 'POST'): Promise<Reply> {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(`${core.url}${PATH}`, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, json: JSON.parse(Buffer.concat(chunks).toString()) as Reply['json'] }));
    });
    req.on('error', reject);
    req.end(text);
  });
}

const received = async (core: TestCore, source: string): Promise<number> =>
  (await core.metrics.receiver.eventsReceived.get()).values.find((v) => v.labels.source === source && v.labels.type === '*')?.value ?? 0;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A core with its own recording plugin, closed after the test. */
async function startCore(behaviour?: Parameters<typeof startRecordingPlugin>[0], server = '', flow = ''): Promise<{ core: TestCore; rec: RecordingPlugin }> {
  const rec = await startRecordingPlugin(behaviour);
  cleanups.push(() => rec.close());
  const core = await startTestCore(config(rec.address, server, flow));
  cleanups.push(() => core.close());
  return { core, rec };
}

describe('POST /api/v1/events', () => {
  let core: TestCore;
  let rec: RecordingPlugin;
  beforeAll(async () => {
    rec = await startRecordingPlugin();
    core = await startTestCore(config(rec.address));
  });
  afterAll(async () => {
    await core.close();
    await rec.close();
  });

  const sdk = readFixture<Record<'structured' | 'binary', { headers: Record<string, string | number | boolean>; body: string }>>('cloudevents-sdk-10-messages.json');
  const asText = (headers: Record<string, string | number | boolean>): Record<string, string> => Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, String(v)]));
  const callFor = async (instance: string): Promise<CloudEvent> => {
    for (let i = 0; i < 200; i++) {
      const call = rec.calls.find((c) => labelsOf(c.event).instance_id === instance);
      if (call) return call.event;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no plugin call for ${instance}`);
  };

  it("takes the official SDK's structured message: the plugin gets its attributes, typed extensions and the whole data object", async () => {
    expect(await send(core, sdk.structured.body, asText(sdk.structured.headers))).toMatchObject({ status: 200, json: { status: 'success', accepted: 1 } });
    expect(await callFor('i-0abc123')).toEqual({
      specversion: '1.0',
      id: '6c1e8a36-5d7e-4c4a-9a0e-2b7d1f9f0c11',
      source: '//node-watcher/ip-10-0-1-23',
      type: TYPE,
      time: '2026-11-25T10:00:00.123Z',
      subject: 'i-0abc123',
      datacontenttype: 'application/json',
      data: { labels: { instance_id: 'i-0abc123', node: 'ip-10-0-1-23', availability_zone: 'eu-west-1a' }, action: 'terminate', notice: 'Spot interruption ünïcode' },
      extensions: { region: { type: 'string', value: 'eu-west-1' }, attempt: { type: 'integer', value: 3 }, critical: { type: 'boolean', value: true } },
    });
    expect(await received(core, 'cloudevents_structured')).toBe(1);
  });

  it("takes the SDK's binary message: attributes from the ce-* headers, percent-decoded; extensions are strings there; data is the body", async () => {
    const headers = { ...asText(sdk.binary.headers), 'ce-id': 'binary-1', 'ce-subject': 'i-0binary%20%C3%BC' };
    expect(await send(core, sdk.binary.body.replaceAll('i-0abc123', 'i-0binary'), headers)).toMatchObject({ status: 200, json: { accepted: 1 } });
    expect(await callFor('i-0binary')).toMatchObject({
      id: 'binary-1',
      subject: 'i-0binary ü',
      time: '2026-11-25T10:00:00.123Z',
      datacontenttype: 'application/json',
      data: { labels: { instance_id: 'i-0binary' }, action: 'terminate' },
      extensions: { region: { type: 'string', value: 'eu-west-1' }, attempt: { type: 'string', value: '3' }, critical: { type: 'string', value: 'true' } },
    });
    expect(await received(core, 'cloudevents_binary')).toBe(1);
  });

  it('takes a batch: every event runs; an empty batch is a 200 with nothing accepted', async () => {
    const batch = ['i-b1', 'i-b2', 'i-b3'].map((id) => event(id));
    expect(await send(core, batch, BATCH)).toMatchObject({ status: 200, json: { accepted: 3 } });
    await Promise.all(['i-b1', 'i-b2', 'i-b3'].map(callFor));
    expect(await send(core, [], BATCH)).toMatchObject({ status: 200, json: { accepted: 0 } });
    expect(await received(core, 'cloudevents_batch')).toBe(3);
  });

  it('a re-sent event (any mode) is deduplicated while its group cools down: one run', async () => {
    await send(core, event('i-twice'), STRUCTURED);
    await callFor('i-twice');
    expect(await send(core, [event('i-twice')], BATCH)).toMatchObject({ status: 200 });
    expect(await send(core, binaryBody('i-twice'), binaryHeaders('i-twice'))).toMatchObject({ status: 200 });
    await new Promise((r) => setTimeout(r, 100));
    expect(rec.calls.filter((c) => labelsOf(c.event).instance_id === 'i-twice')).toHaveLength(1);
    expect((await core.metrics.engine.eventsDeduplicated.get()).values).toContainEqual({ labels: { flow: 'spot' }, value: 2 });
  });

  it('an event naming flows in hollowtreessettled (any mode) passes those flows by, counted as deduplicated, though no cooldown holds them; the other flows run it', async () => {
    // A flow without a cooldown: any re-send of the event would run it again, but for the sender naming it.
    const { core: own, rec: ownRec } = await startCore(undefined, '', `  notify:\n    allowedEvents: [${TYPE}]\n    cooldown: 0s\n    plugins: [rec]\n`);
    const flowsCalled = async (instance: string, calls: number): Promise<string[]> => {
      await ownRec.waitForCalls(calls);
      return ownRec.calls.filter((c) => labelsOf(c.event).instance_id === instance).map((c) => c.flow).sort();
    };
    expect(await send(own, event('i-settled', { hollowtreessettled: 'notify' }), STRUCTURED)).toMatchObject({ status: 200 });
    expect(await flowsCalled('i-settled', 1)).toEqual(['spot']);
    expect(await send(own, binaryBody('i-settled-bin'), binaryHeaders('i-settled-bin', { 'ce-hollowtreessettled': 'spot' }))).toMatchObject({ status: 200 });
    expect(await flowsCalled('i-settled-bin', 2)).toEqual(['notify']);
    // Named by both, the event runs nowhere; a flow of a name core lacks changes nothing.
    expect(await send(own, [event('i-settled-both', { hollowtreessettled: 'spot,notify,gone' })], BATCH)).toMatchObject({ status: 200, json: { accepted: 1 } });
    await new Promise((r) => setTimeout(r, 100));
    expect(ownRec.calls).toHaveLength(2);
    expect((await own.metrics.engine.eventsDeduplicated.get()).values).toEqual(expect.arrayContaining([{ labels: { flow: 'spot' }, value: 2 }, { labels: { flow: 'notify' }, value: 2 }]));
  });

  it.each(['ce-id', 'ce-type', 'ce-region'])('refuses a binary-mode event with %s sent twice, naming the header, rather than joining its values', async (header) => {
    const before = rec.calls.length;
    const reply = await send(core, binaryBody('i-dup'), { ...binaryHeaders('i-dup'), [header]: ['one', 'two'] });
    expect(reply).toMatchObject({ status: 400, json: { status: 'error', errorType: 'bad_data', error: `${header}: sent 2 times: a binary-mode attribute takes one value` } });
    await new Promise((r) => setTimeout(r, 20));
    expect(rec.calls.length).toBe(before);
  });

  const MODES = 'Content-Type must be application/cloudevents+json (structured mode), application/cloudevents-batch+json (batch mode) or application/json with ce-* headers (binary mode)';
  const NOT_A_NAME = 'not a CloudEvents attribute name: lower-case letters a-z and digits only';
  const NOT_AN_OBJECT = 'expected a JSON object with a string map "labels"';
  const labels = (count: number): Record<string, string> => Object.fromEntries(Array.from({ length: count }, (_, i) => [`l${i}`, 'v']));
  it.each<[string, unknown, Record<string, string>, number, string, string]>([
    // structured mode: each required attribute, its type, the spec version
    ['no id', without(event('x'), 'id'), STRUCTURED, 400, 'bad_data', 'id: required (expected string)'],
    ['an empty id', event('x', { id: '' }), STRUCTURED, 400, 'bad_data', 'id: must not be empty'],
    ['a numeric id', event('x', { id: 7 }), STRUCTURED, 400, 'bad_data', 'id: Invalid input: expected string, received number'],
    ['no source', without(event('x'), 'source'), STRUCTURED, 400, 'bad_data', 'source: required (expected string)'],
    ['no type', without(event('x'), 'type'), STRUCTURED, 400, 'bad_data', 'type: required (expected string)'],
    ['no specversion', without(event('x'), 'specversion'), STRUCTURED, 400, 'bad_data', 'specversion: required (expected "1.0")'],
    ['specversion 0.3', event('x', { specversion: '0.3' }), STRUCTURED, 400, 'bad_data', 'specversion: expected "1.0" (CloudEvents 1.0), got "0.3"'],
    ['specversion 1 as a number', event('x', { specversion: 1 }), STRUCTURED, 400, 'bad_data', 'specversion: expected "1.0" (CloudEvents 1.0), got 1'],
    ['a time that is no RFC 3339 time', event('x', { time: 'yesterday' }), STRUCTURED, 400, 'bad_data', 'time: expected an RFC 3339 time'],
    ['an empty subject', event('x', { subject: '' }), STRUCTURED, 400, 'bad_data', 'subject: must not be empty'],
    // data: a JSON object with a labels map
    ['no data', without(event('x'), 'data'), STRUCTURED, 400, 'bad_data', 'data: required (expected object)'],
    ['string data', event('x', { data: 'i-1' }), STRUCTURED, 400, 'bad_data', `data: ${NOT_AN_OBJECT}`],
    ['array data', event('x', { data: [{ labels: {} }] }), STRUCTURED, 400, 'bad_data', `data: ${NOT_AN_OBJECT}`],
    ['data without labels', event('x', { data: { instance_id: 'i-1' } }), STRUCTURED, 400, 'bad_data', 'data.labels: required (expected object)'],
    ['a label that is no string', event('x', { data: { labels: { instance_id: 1 } } }), STRUCTURED, 400, 'bad_data', 'data.labels.instance_id: expected a string value'],
    ['data nested more than 64 levels deep', event('x', { data: deepData(64) }), STRUCTURED, 400, 'bad_data', 'data: nested more than 64 levels deep'],
    ['data_base64', { ...without(event('x'), 'data'), data: { labels: {} }, data_base64: 'aGk=' }, STRUCTURED, 400, 'bad_data', 'data_base64: binary data is not taken: send "data" as a JSON object with a string map "labels"'],
    ['a datacontenttype that is not JSON', event('x', { datacontenttype: 'text/plain' }), STRUCTURED, 400, 'bad_data', 'datacontenttype: the data must be JSON: expected application/json or a +json media type'],
    ['more labels than maxLabelsPerAlert', event('x', { data: { labels: labels(6) } }), STRUCTURED, 400, 'bad_data', 'data.labels: 6 labels, more than the limit of 5'],
    ['a label longer than maxLabelLength', event('x', { data: { labels: { instance_id: 'i'.repeat(65) } } }), STRUCTURED, 400, 'bad_data', 'data.labels.instance_id: longer than the limit of 64 characters'],
    // extensions
    ['an extension name with upper case', event('x', { Region: 'eu' }), STRUCTURED, 400, 'bad_data', `Region: ${NOT_A_NAME}`],
    ['an extension name with an underscore', event('x', { spot_action: 'eu' }), STRUCTURED, 400, 'bad_data', `spot_action: ${NOT_A_NAME}`],
    ['an object extension', event('x', { region: { name: 'eu' } }), STRUCTURED, 400, 'bad_data', 'region: an extension attribute must be a string, a boolean or a 32-bit integer, got {"name":"eu"}'],
    ['hollowtreessettled that is no string', event('x', { hollowtreessettled: 1 }), STRUCTURED, 400, 'bad_data', 'hollowtreessettled: expected a string: the names of flows, each percent-encoded, joined by commas'],
    ['hollowtreessettled naming more than 1,000 flows', event('x', { hollowtreessettled: 'f,'.repeat(1_000) + 'f' }), STRUCTURED, 400, 'bad_data', 'hollowtreessettled: names more flows than the limit of 1000'],
    ['a batch with hollowtreessettled naming more than 1,000 flows', [event('x', { hollowtreessettled: ','.repeat(1_000) })], BATCH, 400, 'bad_data', 'events[0].hollowtreessettled: names more flows than the limit of 1000'],
    ['ce-hollowtreessettled naming more than 1,000 flows', binaryBody('x'), binaryHeaders('x', { 'ce-hollowtreessettled': ','.repeat(1_000) }), 400, 'bad_data', 'ce-hollowtreessettled: names more flows than the limit of 1000'],
    ['an extension past 32 bits', event('x', { attempt: 2 ** 31 }), STRUCTURED, 400, 'bad_data', 'attempt: an extension attribute must be a string, a boolean or a 32-bit integer, got 2147483648'],
    ['a fractional extension', event('x', { attempt: 1.5 }), STRUCTURED, 400, 'bad_data', 'attempt: an extension attribute must be a string, a boolean or a 32-bit integer, got 1.5'],
    ['a __proto__ member', JSON.stringify(event('x')).replace('{', '{"__proto__":{"type":"x"},'), STRUCTURED, 400, 'bad_data', `__proto__: ${NOT_A_NAME}`],
    ['an array in structured mode', [event('x')], STRUCTURED, 400, 'bad_data', 'body: a JSON array is a batch of events: send it as application/cloudevents-batch+json'],
    ['null in structured mode', null, STRUCTURED, 400, 'bad_data', 'body: Invalid input: expected object, received null'],
    ['bad JSON', '{"id":', STRUCTURED, 400, 'bad_json', 'body is not valid JSON: Unexpected end of JSON input'],
    // batch mode: the whole batch or nothing, problems under the event's index
    ['a batch that is no array', event('x'), BATCH, 400, 'bad_data', 'body: expected a JSON array of events'],
    ['a batch with one bad event', [event('i-batch-ok'), without(event('x'), 'type')], BATCH, 400, 'bad_data', 'events[1].type: required (expected string)'],
    ['a batch with a bad label map', [event('x', { data: { labels: labels(6) } })], BATCH, 400, 'bad_data', 'events[0].data.labels: 6 labels, more than the limit of 5'],
    ['a batch with data nested too deep', [event('x', { data: deepData(64) })], BATCH, 400, 'bad_data', 'events[0].data: nested more than 64 levels deep'],
    ['more events than maxAlertsPerRequest', Array.from({ length: 6 }, (_, i) => event(`many-${i}`)), BATCH, 413, 'too_many_events', 'request carries 6 events, more than the limit of 5'],
    // binary mode: attributes named by their header, data as the body
    ['no ce-id', binaryBody('x'), without(binaryHeaders('x'), 'ce-id') as Record<string, string>, 400, 'bad_data', 'ce-id: required (expected string)'],
    ['ce-specversion 0.3', binaryBody('x'), binaryHeaders('x', { 'ce-specversion': '0.3' }), 400, 'bad_data', 'ce-specversion: expected "1.0" (CloudEvents 1.0), got "0.3"'],
    ['a bad ce-time', binaryBody('x'), binaryHeaders('x', { 'ce-time': '2026-13-01T00:00:00Z' }), 400, 'bad_data', 'ce-time: expected an RFC 3339 time'],
    ['a body that is no object', '"i-1"', binaryHeaders('x'), 400, 'bad_data', `body: ${NOT_AN_OBJECT}`],
    ['a body without labels', '{"instance_id":"i-1"}', binaryHeaders('x'), 400, 'bad_data', 'body.labels: required (expected object)'],
    ['a body nested too deep', JSON.stringify(deepData(64)), binaryHeaders('x'), 400, 'bad_data', 'body: nested more than 64 levels deep'],
    ['a structured event sent as application/json, with no ce-* header', event('x'), { 'content-type': 'application/json' }, 400, 'bad_data', 'ce-* headers: none sent: Content-Type application/json is binary mode, where the attributes travel as ce-* headers and the body is the data; send a whole event as application/cloudevents+json'],
    ['a header that is not percent-encoded', binaryBody('x'), binaryHeaders('x', { 'ce-subject': '100%' }), 400, 'bad_data', 'ce-subject: not percent-encoded UTF-8'],
    ['a ce-datacontenttype header', binaryBody('x'), binaryHeaders('x', { 'ce-datacontenttype': 'application/json' }), 400, 'bad_data', 'ce-datacontenttype: not a binary-mode header: the body is the data and Content-Type its type'],
    ['an extension header name with an underscore', binaryBody('x'), binaryHeaders('x', { 'ce-spot_action': 'x' }), 400, 'bad_data', `ce-spot_action: ${NOT_A_NAME}`],
    // media types
    ['no Content-Type', event('x'), {}, 415, 'unsupported_media_type', `${MODES}; the request has none`],
    ['text/plain', event('x'), { 'content-type': 'text/plain' }, 415, 'unsupported_media_type', `${MODES}, got "text/plain"`],
    ['another event format', event('x'), { 'content-type': 'application/cloudevents+xml' }, 415, 'unsupported_media_type', `${MODES}, got "application/cloudevents+xml"`],
    ['binary data that is not JSON', 'i-1', binaryHeaders('x', { 'content-type': 'text/plain' }), 415, 'unsupported_media_type', `${MODES}, got "text/plain"`],
  ])('refuses %s', async (_name, body, headers, status, errorType, error) => {
    const before = rec.calls.length;
    expect(await send(core, body, headers)).toMatchObject({ status, json: { status: 'error', errorType, error } });
    await new Promise((r) => setTimeout(r, 20));
    expect(rec.calls.length).toBe(before);
  });

  it('takes data nested 64 levels deep, and the plugin gets all of it', async () => {
    const data = deepData(63);
    expect(await send(core, event('i-deep-63', { data }), STRUCTURED)).toMatchObject({ status: 200, json: { accepted: 1 } });
    expect((await callFor('i-deep-63')).data).toEqual(data);
  });

  it.each([
    ['structured', JSON.stringify(event('i-deeper', { data: { labels: {}, deep: 'X' } })), STRUCTURED, 128],
    ['batch', JSON.stringify([event('i-deeper', { data: { labels: {}, deep: 'X' } })]), BATCH, 128],
    ['binary', JSON.stringify({ labels: {}, deep: 'X' }), binaryHeaders('i-deeper'), 64],
  ])('refuses a body nested thousands of levels deep in %s mode without parsing it', async (_mode, template, headers, bound) => {
    // Well-formed JSON, so parsing it would succeed, and cost the event loop ~0.3 µs a level (a third of a second a megabyte).
    const body = template.replace('"X"', '['.repeat(3_000) + ']'.repeat(3_000));
    const parse = vi.spyOn(JSON, 'parse');
    try {
      expect(await send(core, body, headers)).toMatchObject({ status: 400, json: { errorType: 'bad_data', error: `body: nested more than ${bound} levels deep` } });
      expect(parse.mock.calls.filter(([text]) => text === body)).toEqual([]);
    } finally {
      parse.mockRestore();
    }
  });

  it('refuses an event with more extension attributes or labels than maxLabelsPerAlert, in every mode, before validating them', async () => {
    const extensions = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`ext${i}`, 'x']));
    const headers = Object.fromEntries(Object.entries(extensions).map(([name, value]) => [`ce-${name}`, value]));
    const refused = (error: string) => ({ status: 400, json: { errorType: 'bad_data', error } });
    expect(await send(core, event('i-ext', extensions), STRUCTURED)).toMatchObject(refused('event: 6 extension attributes, more than the limit of 5'));
    expect(await send(core, [event('i-ext-0'), event('i-ext', extensions)], BATCH)).toMatchObject(refused('events[1]: 6 extension attributes, more than the limit of 5'));
    expect(await send(core, binaryBody('i-ext'), binaryHeaders('i-ext', headers))).toMatchObject(refused('ce-* headers: 6 extension attributes, more than the limit of 5'));
    // Labels are counted as early, with the message checked after the schema before.
    const schema = vi.spyOn(cloudEventSchema, 'safeParse');
    try {
      const sixLabels = { labels: labels(6) };
      expect(await send(core, event('i-lab', { data: sixLabels }), STRUCTURED)).toMatchObject(refused('data.labels: 6 labels, more than the limit of 5'));
      expect(await send(core, JSON.stringify(sixLabels), binaryHeaders('i-lab'))).toMatchObject(refused('body.labels: 6 labels, more than the limit of 5'));
      expect(schema).not.toHaveBeenCalled();
    } finally {
      schema.mockRestore();
    }
    // At the limit, every one is taken.
    expect(await send(core, event('i-ext-5', Object.fromEntries(Object.entries(extensions).slice(1))), STRUCTURED)).toMatchObject({ status: 200, json: { accepted: 1 } });
  });

  it('refuses a body over maxBodyBytes with 413 and GET with 405', async () => {
    const big = event('i-big', { data: { labels: {}, pad: 'x'.repeat(8192) } });
    expect(await send(core, big, STRUCTURED)).toMatchObject({ status: 413, json: { errorType: 'too_large', error: 'request body is larger than the limit of 8192 bytes' } });
    const get = await send(core, '', {}, 'GET');
    expect(get).toMatchObject({ status: 405, json: { errorType: 'method_not_allowed', error: 'GET is not allowed on /api/v1/events; use POST' } });
    expect(get.headers.allow).toBe('POST');
  });

  it('counts refusals in hollowtrees_requests_rejected_total, and no event of a refused batch', async () => {
    expect((await core.metrics.receiver.requestsRejected.get()).values).toContainEqual({ labels: { reason: 'too_many_events' }, value: 1 });
    // The batch whose second event was bad: its valid first event was never received nor run.
    expect(rec.calls.map((c) => labelsOf(c.event).instance_id)).not.toContain('i-batch-ok');
  });
});

describe('event ids and the kubernetes state backend', () => {
  it('an id longer than maxLabelLength is refused 400 naming it, not answered 503 state_unavailable at every re-send (no Lease can hold it)', async () => {
    const api = await startKubeApiServer();
    cleanups.push(() => api.close());
    const kubeconfig = join(mkdtempSync(join(tmpdir(), 'hollowtrees-event-id-')), 'kubeconfig');
    writeFileSync(kubeconfig, api.kubeConfigFileText());
    const core = await startTestCore(`state:\n  backend: kubernetes\n  kubernetes: { namespace: ops, kubeconfig: "${kubeconfig}" }\nflows:\n  spot:\n    allowedEvents: [${TYPE}]\n    plugins: [log]\n`);
    cleanups.push(() => core.close());
    // Its group key is the id, and the Lease keeps the key and the event id: over the API server's 256 KiB of annotations.
    const long = event('i-long', { id: 'x'.repeat(140_000) });
    for (let i = 0; i < 2; i++) expect(await send(core, long, STRUCTURED)).toMatchObject({ status: 400, json: { errorType: 'bad_data', error: 'id: longer than the limit of 4096 characters' } });
    expect(await send(core, [event('i-ok'), event('i-long-too', { id: 'y'.repeat(4097) })], BATCH)).toMatchObject({ status: 400, json: { error: 'events[1].id: longer than the limit of 4096 characters' } });
    expect(await send(core, binaryBody('i-bin'), binaryHeaders('i-bin', { 'ce-id': 'z'.repeat(4097) }))).toMatchObject({ status: 400, json: { error: 'ce-id: longer than the limit of 4096 characters' } });
    expect(api.cluster.leases.all()).toEqual([]);
    expect(await send(core, event('i-short', { id: 'x'.repeat(4096) }), STRUCTURED)).toMatchObject({ status: 200 });
  });
});

describe('the alert paths\' rules on /api/v1/events', () => {
  it('with auth on: 401 without credentials, 200 with the bearer token', async () => {
    const { core } = await startCore(undefined, '  auth: { bearerToken: events-token }');
    expect(await send(core, event('i-auth'), STRUCTURED)).toMatchObject({ status: 401, json: { errorType: 'unauthorized' } });
    expect(await send(core, event('i-auth'), { ...STRUCTURED, authorization: 'Bearer events-token' })).toMatchObject({ status: 200 });
  });

  it('503 overloaded while maxConcurrentRequests uploads are in progress', async () => {
    const { core } = await startCore();
    // One upload that never finishes holds the only slot.
    const stalled: Socket = connect(core.port, '127.0.0.1');
    cleanups.push(() => void stalled.destroy());
    await new Promise((resolve) => stalled.once('connect', resolve));
    stalled.write(`POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents+json\r\nContent-Length: 100\r\n\r\n{`);
    let reply = await send(core, event('i-over'), STRUCTURED);
    for (let i = 0; reply.status !== 503 && i < 50; i++) reply = await send(core, event('i-over'), STRUCTURED);
    expect(reply).toMatchObject({ status: 503, json: { errorType: 'overloaded', error: 'too many requests at once; retry later' } });
    expect(reply.headers['retry-after']).toBe('1');
  });

  it('503 queue_full with Retry-After for a batch a flow has no room for; the re-sent batch runs the rest, each once', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { core, rec } = await startCore(() => gate, '', '    concurrency: 1\n    queueSize: 1');
    cleanups.push(() => release());
    const batch = ['i-q1', 'i-q2', 'i-q3'].map((id) => event(id));
    const refused = await send(core, batch, BATCH);
    expect(refused).toMatchObject({ status: 503, json: { errorType: 'queue_full', error: '1 of 3 events were not queued by every flow they match (flow "spot": its queue is full (queueSize 1)); retry later' } });
    expect(refused.headers['retry-after']).toBe('1');
    release();
    await rec.waitForCalls(2);
    for (let i = 0; core.engine.recentRuns().length < 2 && i < 200; i++) await new Promise((r) => setTimeout(r, 25));
    expect(await send(core, batch, BATCH)).toMatchObject({ status: 200, json: { accepted: 3 } });
    await rec.waitForCalls(3);
    await new Promise((r) => setTimeout(r, 100));
    expect(rec.calls.map((c) => labelsOf(c.event).instance_id)).toEqual(['i-q1', 'i-q2', 'i-q3']);
  });

  it('503 shutting_down once core is stopping; readiness is false and the source is listed as stopping', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { core, rec } = await startCore(() => gate);
    cleanups.push(() => release());
    expect(await send(core, event('i-first'), STRUCTURED)).toMatchObject({ status: 200 });
    await rec.waitForCalls(1);
    const closing = core.close();
    const refused = await send(core, event('i-late'), STRUCTURED);
    expect(refused).toMatchObject({ status: 503, json: { errorType: 'shutting_down' } });
    expect(refused.headers.connection).toBe('close');
    expect((await fetch(`${core.url}/-/ready`)).status).toBe(503);
    expect(await (await fetch(`${core.url}/api/v1/status/sources`)).json()).toMatchObject([{ name: 'http', state: 'stopping' }]);
    release();
    await closing;
    expect(rec.calls).toHaveLength(1);
  });
});

describe('broken events, generated (seeded), in every mode', () => {
  /** Values of every JSON type and the edge cases of the rules: each replaces or adds an attribute. */
  const VALUES: unknown[] = [null, true, false, 0, -1, 1.5, 2 ** 31, -(2 ** 31), '', 'x', '1.0', '0.3', '2026-11-25T10:00:00Z', '2026-02-30T10:00:00Z', 'text/plain', 'application/json', '%zz', 'y'.repeat(300), [], [1], {}, { labels: {} }, { labels: { a: 1 } }, { labels: { instance_id: 'i' } }];
  const KEYS = ['specversion', 'id', 'source', 'type', 'time', 'subject', 'datacontenttype', 'dataschema', 'data', 'data_base64', 'region', 'Region', 'spot_action', 'x1'];

  it('answers every one with 200 or a 4xx with a JSON reason, never a 5xx, and stays up', async () => {
    const { core } = await startCore();
    const random = seededRandom(15);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const answers = new Map<string, number>();
    for (let i = 0; i < 600; i++) {
      const broken: Record<string, unknown> = event(`i-fuzz-${i}`, { time: '2026-11-25T10:00:00Z' });
      for (let n = 0; n <= Math.floor(random() * 3); n++) {
        const key = pick(KEYS);
        if (random() < 0.3) delete broken[key];
        else broken[key] = pick(VALUES);
      }
      const mode = pick(['structured', 'batch', 'binary'] as const);
      const headers = mode === 'structured' ? STRUCTURED : mode === 'batch' ? BATCH : { 'content-type': 'application/json', ...Object.fromEntries(Object.entries(broken).filter(([k]) => k !== 'data').map(([k, v]) => [`ce-${k}`, typeof v === 'string' ? v : JSON.stringify(v)])) };
      const body = mode === 'structured' ? broken : mode === 'batch' ? [broken] : JSON.stringify(broken.data ?? null);
      const reply = await send(core, body, headers);
      const key = `${reply.status} ${reply.json.errorType ?? ''}`;
      answers.set(key, (answers.get(key) ?? 0) + 1);
      if (reply.status === 200) expect(reply.json).toEqual({ status: 'success', accepted: 1 });
      else expect([reply.status, reply.json.status, typeof reply.json.error], JSON.stringify({ mode, body, headers })).toEqual([400, 'error', 'string']);
    }
    // Both outcomes were reached: the generator is neither all valid nor all broken.
    expect(answers.get('200 ')).toBeGreaterThan(20);
    expect(answers.get('400 bad_data')).toBeGreaterThan(300);
    expect((await fetch(`${core.url}/-/healthy`)).status).toBe(200);
    expect(await send(core, event('i-after-fuzz'), STRUCTURED)).toMatchObject({ status: 200 });
  });
});
