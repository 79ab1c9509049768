import { describe, expect, it, vi } from 'vitest';
import type { AlertEventData } from './alert-to-event.js';
import { postableAlertSchema, webhookAlertSchema } from './alert-schemas.js';
import { HttpError } from './http-error.js';
import { MAX_ALERT_BODY_DEPTH, parseAlerts, type ParsedAlerts } from './parse-alerts.js';
import { problemsText } from '../validation-issues.js';
import { readFixture } from '../../test/support/fixtures.js';

const prometheusRequests = readFixture<Array<{ path: string; body: unknown[] }>>('prometheus-2.42-api-v2-alerts.json');
const webhookFiring = readFixture<unknown>('alertmanager-0.25-webhook-firing.json');
const webhookResolved = readFixture<unknown>('alertmanager-0.25-webhook-resolved.json');
const limits = { maxBodyBytes: 1 << 20, maxAlertsPerRequest: 100, maxLabelsPerAlert: 10, maxLabelLength: 64, maxConcurrentRequests: 10 };
const body = (value: unknown): Buffer => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

/** The events of every alert the receiver takes from a request. */
const eventsOf = async (...args: Parameters<typeof parseAlerts>) => (await parseAlerts(...args)).events;

/** What the receiver refuses of a request: all of it (an HttpError), or alerts one by one (a 400 naming them). */
async function refusal(run: () => Promise<ParsedAlerts>): Promise<{ status: number; message: string }> {
  let parsed: ParsedAlerts;
  try {
    parsed = await run();
  } catch (err) {
    expect(err).toBeInstanceOf(HttpError);
    return { status: (err as HttpError).status, message: (err as HttpError).message };
  }
  if (parsed.refused.refused === 0) throw new Error('expected a refusal');
  return { status: 400, message: problemsText(parsed.refused.problems) };
}

describe('alerts to CloudEvents', () => {
  const first = prometheusRequests[0]!.body;
  const startsAt = '2026-11-25T03:32:16.258Z';

  it('turns a Prometheus 2.42 postable alert into a firing event', async () => {
    const [event] = await eventsOf('api_v2', body(first), new Date('2026-11-25T03:32:18.258Z'), limits);
    expect(event).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{32}$/),
      source: 'http://vm:19190',
      specversion: '1.0',
      type: 'prometheus.server.alert.SpotTerminationNotice',
      time: startsAt,
      datacontenttype: 'application/json',
      data: {
        labels: { alertname: 'SpotTerminationNotice', cluster_name: 'prod', instance_id: 'i-0abc123', node: 'ip-10-0-1-23.eu-west-1.compute.internal', severity: 'critical' },
        annotations: { description: 'AWS sent a spot instance-action notice', summary: 'Spot instance i-0abc123 will be reclaimed' },
        status: 'firing',
        startsAt,
        endsAt: '2026-11-25T03:32:22.258Z',
        generatorURL: expect.stringContaining('http://vm:19190/graph'),
        fingerprint: expect.stringMatching(/^[0-9a-f]{16}$/),
      },
    });
  });

  it('gives every re-send of one occurrence the same id, and the next occurrence another', async () => {
    const ids = await Promise.all(prometheusRequests.map(async (r) => (await eventsOf('api_v2', body(r.body), new Date(startsAt), limits))[0]!.id));
    const occurrences = prometheusRequests.map((r) => (r.body[0] as { startsAt: string }).startsAt);
    expect(new Set(ids).size).toBe(new Set(occurrences).size);
    expect(new Set(occurrences).size).toBe(3);
    expect(ids[0]).toBe(ids[6]);
    expect(ids[0]).not.toBe(ids[7]);
  });

  it('an alert whose endsAt is at or before receipt is resolved (the v2 body has no status)', async () => {
    const resolvedCopy = prometheusRequests[4]!.body; // endsAt 03:32:24.258, the time it resolved
    const at = async (t: string) => (await eventsOf('api_v2', body(resolvedCopy), new Date(t), limits))[0]!;
    expect((await at('2026-11-25T03:32:24.258Z')).type).toBe('prometheus.server.alert.SpotTerminationNotice.resolved');
    expect(((await at('2026-11-25T03:32:25Z')).data as AlertEventData).status).toBe('resolved');
    expect((await at('2026-11-25T03:32:20Z')).type).toBe('prometheus.server.alert.SpotTerminationNotice');
  });

  it('the legacy v1 body reads like v2', async () => {
    const v1 = await eventsOf('api_v1', body(first), new Date(startsAt), limits);
    expect(v1).toEqual(await eventsOf('api_v2', body(first), new Date(startsAt), limits));
  });

  it('reads the Alertmanager 0.25 webhook payload, firing and resolved, with the same id as the Prometheus alert', async () => {
    const [firing] = await eventsOf('webhook', body(webhookFiring), new Date(), limits);
    const [resolved] = await eventsOf('webhook', body(webhookResolved), new Date(), limits);
    expect(firing!.type).toBe('prometheus.server.alert.SpotTerminationNotice');
    expect(firing!.source).toBe('http://vm:19194');
    expect(firing!.data).toMatchObject({ status: 'firing', endsAt: '', fingerprint: 'b48c66a924da3988' });
    expect(resolved!.type).toBe('prometheus.server.alert.SpotTerminationNotice.resolved');
    expect(resolved!.data).toMatchObject({ status: 'resolved', endsAt: '2026-11-25T03:32:24.258Z' });
    expect(firing!.id).toBe((await eventsOf('api_v2', body(first), new Date(startsAt), limits))[0]!.id);
    expect(resolved!.id).not.toBe(firing!.id);
  });

  it('gives label sets that only differ in where separators fall different ids', async () => {
    const idOf = async (labels: Record<string, string>) => (await eventsOf('api_v2', body([{ labels: { alertname: 'A', ...labels }, startsAt }]), new Date(startsAt), limits))[0]!.id;
    expect(await idOf({ a: 'x\u0000b\u0000y' })).not.toBe(await idOf({ a: 'x', b: 'y' }));
    expect(await idOf({ a: 'b1:c' })).not.toBe(await idOf({ a: 'b', c: '' }));
  });

  it('gives one label set the same fingerprint and id in any key order, the value earlier versions gave', async () => {
    const parseOne = async (labelsJson: string) => (await eventsOf('api_v2', body(`[{"labels":${labelsJson},"startsAt":"${startsAt}"}]`), new Date(startsAt), limits))[0]!;
    // Sorted as Prometheus sends them, then out of order, then with integer-like names (which JavaScript lists first).
    const sorted = await parseOne('{"alertname":"A","instance":"i-1","zone":"b"}');
    const shuffled = await parseOne('{"zone":"b","alertname":"A","instance":"i-1"}');
    expect((sorted.data as AlertEventData).fingerprint).toBe('35d6b3385685fabc');
    expect((shuffled.data as AlertEventData).fingerprint).toBe('35d6b3385685fabc');
    expect(shuffled.id).toBe(sorted.id);
    const numeric = await parseOne('{"alertname":"A","instance":"i-1","zone":"b","9":"y","10":"x"}');
    expect((numeric.data as AlertEventData).fingerprint).toBe('7ed4c212d4ce0585');
  });

  it('keeps nanoseconds of a time with more fractional digits, truncating the rest, in the id too', async () => {
    const parse = async (time: string) => (await eventsOf('api_v2', body([{ labels: { alertname: 'A' }, startsAt: time, endsAt: time }]), new Date(0), limits))[0]!;
    const event = await parse(`2026-11-25T10:00:00.1234567899${'9'.repeat(90)}Z`);
    expect(event.time).toBe('2026-11-25T10:00:00.123456789Z');
    expect(event.data).toMatchObject({ startsAt: '2026-11-25T10:00:00.123456789Z', endsAt: '2026-11-25T10:00:00.123456789Z' });
    expect(event.id).toBe((await parse('2026-11-25T11:00:00.123456789+01:00')).id);
  });

  it('ignores unknown fields', async () => {
    const [event] = await eventsOf('api_v2', body([{ labels: { alertname: 'A' }, extra: { deep: [1] }, startsAt }]), new Date(startsAt), limits);
    expect(event!.type).toBe('prometheus.server.alert.A');
  });

  it('an alert without startsAt takes the receipt time and an id from its labels alone', async () => {
    const at = new Date('2026-11-25T10:00:00.5Z');
    const [a] = await eventsOf('api_v2', body([{ labels: { alertname: 'A' } }]), at, limits);
    const [b] = await eventsOf('api_v2', body([{ labels: { alertname: 'A' } }]), new Date(at.getTime() + 1000), limits);
    expect(a!.time).toBe('2026-11-25T10:00:00.5Z');
    expect(a!.id).toBe(b!.id);
  });

  it('takes null startsAt, endsAt, generatorURL and annotations as unset, as Alertmanager 0.25 does: a firing alert from the receipt time', async () => {
    const at = new Date('2026-11-25T10:00:00.5Z');
    const nulls = { startsAt: null, endsAt: null, generatorURL: null, annotations: null };
    const [withNulls] = await eventsOf('api_v2', body([{ labels: { alertname: 'A' }, ...nulls }]), at, limits);
    const [without] = await eventsOf('api_v2', body([{ labels: { alertname: 'A' } }]), at, limits);
    expect(withNulls).toEqual(without);
    expect(withNulls).toMatchObject({ type: 'prometheus.server.alert.A', time: '2026-11-25T10:00:00.5Z', data: { status: 'firing', annotations: {}, generatorURL: '' } });
  });

  it('drops a label whose value is null or empty, as Alertmanager 0.25 does: one alert, one id and fingerprint, however the sender wrote it', async () => {
    const at = new Date('2026-11-25T10:00:00.5Z');
    const eventOf = async (labels: Record<string, unknown>, format: 'api_v2' | 'webhook' = 'api_v2') => {
      const alerts = [{ labels, startsAt, ...(format === 'webhook' && { status: 'firing' }) }];
      return (await eventsOf(format, body(format === 'webhook' ? { version: '4', alerts } : alerts), at, limits))[0]!;
    };
    const without = await eventOf({ alertname: 'A', node: 'n-1' });
    for (const x of [null, '']) {
      expect(await eventOf({ alertname: 'A', x, node: 'n-1' })).toEqual(without);
      expect(await eventOf({ alertname: 'A', x, node: 'n-1' }, 'webhook')).toEqual(await eventOf({ alertname: 'A', node: 'n-1' }, 'webhook'));
    }
    expect((without.data as AlertEventData).labels).toEqual({ alertname: 'A', node: 'n-1' });
  });

  it('takes a null annotation value as an empty one, as Alertmanager 0.25 does', async () => {
    const [event] = await eventsOf('api_v2', body([{ labels: { alertname: 'A' }, annotations: { a: null, b: 'v', e: '' } }]), new Date(startsAt), limits);
    expect((event!.data as AlertEventData).annotations).toEqual({ a: '', b: 'v', e: '' });
    // Every value null: the map is still read anew.
    const [allNull] = await eventsOf('api_v2', body([{ labels: { alertname: 'A' }, annotations: { a: null } }]), new Date(startsAt), limits);
    expect((allNull!.data as AlertEventData).annotations).toEqual({ a: '' });
  });

  it('refuses a null or empty alertname as a missing one, as Alertmanager refuses an alert left without labels', async () => {
    for (const alertname of [null, '']) {
      expect((await refusal(() => parseAlerts('api_v2', body([{ labels: { alertname, node: 'n' } }]), new Date(), limits))).message).toBe('alerts[0].labels.alertname: required: labels.alertname');
    }
  });

  it.each([
    ['not JSON', '{"labels":', 400, 'body is not valid JSON'],
    ['an object instead of an array', { labels: {} }, 400, 'alerts: expected a JSON array of alerts'],
    ['an alert without labels', [{ labels: { alertname: 'A' } }, { annotations: {} }], 400, 'alerts[1].labels: required (expected object)'],
    ['an alert without alertname', [{ labels: { alertname: 'A' } }, { labels: { alertname: 'B' } }, { labels: { node: 'x' } }], 400, 'alerts[2].labels.alertname: required: labels.alertname'],
    ['labels that are a list, not a map', [{ labels: ['A', ''] }], 400, 'alerts[0].labels: Invalid input: expected object, received array'],
    ['a label that is not a string', [{ labels: { alertname: 'A', n: 5 } }], 400, 'alerts[0].labels.n: expected a string value'],
    ['a startsAt that is not a time', [{ labels: { alertname: 'A' }, startsAt: 'yesterday' }], 400, 'alerts[0].startsAt'],
    ['too many alerts', Array.from({ length: 101 }, () => ({ labels: { alertname: 'A' } })), 413, 'request carries 101 alerts, more than the limit of 100'],
    ['too many labels', [{ labels: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`l${i}`, 'v']).concat([['alertname', 'A']])) }], 400, 'alerts[0].labels: 12 labels, more than the limit of 10'],
    ['a label value that is too long', [{ labels: { alertname: 'A', big: 'x'.repeat(65) } }], 400, 'alerts[0].labels.big: longer than the limit of 64 characters'],
  ])('refuses %s, naming where', async (_name, value, status, message) => {
    const err = await refusal(() => parseAlerts('api_v2', body(value), new Date(), limits));
    expect(err.status).toBe(status);
    expect(err.message).toContain(message);
  });

  it('refuses a __proto__ label or annotation with one message, whatever its value, and pollutes nothing', async () => {
    const message = async (text: string) => (await refusal(() => parseAlerts('api_v2', body(text), new Date(), limits))).message;
    expect(await message('[{"labels":{"__proto__":{"alertname":"A"}}}]')).toBe('alerts[0].labels.__proto__: expected a string value');
    expect(await message('[{"labels":{"alertname":"A","__proto__":"x"}}]')).toBe('alerts[0].labels.__proto__: the name "__proto__" is reserved');
    expect(await message('[{"labels":{"alertname":"A"},"annotations":{"__proto__":null}}]')).toBe('alerts[0].annotations.__proto__: the name "__proto__" is reserved');
    expect(await message('[{"labels":{"alertname":"A","__proto__":null}}]')).toBe('alerts[0].labels.__proto__: the name "__proto__" is reserved');
    expect(({} as Record<string, unknown>).alertname).toBeUndefined();
  });

  it('lets the event loop turn while it validates a large batch, and still refuses it whole', async () => {
    const many = Array.from({ length: 5_000 }, (_, i) => ({ labels: { alertname: 'A', i: String(i) } }));
    const bigLimits = { ...limits, maxAlertsPerRequest: 10_000 };
    // Turns of the event loop while one call runs: a call that holds the loop sees none.
    const turnsDuring = async (run: () => Promise<unknown>): Promise<number> => {
      let turns = 0;
      let running = true;
      const tick = (): void => {
        if (!running) return;
        turns++;
        setImmediate(tick);
      };
      setImmediate(tick);
      await run().finally(() => (running = false));
      return turns;
    };
    let events: unknown[] = [];
    expect(await turnsDuring(async () => (events = await eventsOf('api_v2', body(many), new Date(), bigLimits)))).toBeGreaterThan(2);
    expect(events).toHaveLength(5_000);
    let parsed: ParsedAlerts | undefined;
    const bad = [...many, { labels: { i: 'no-name' } }];
    expect(await turnsDuring(async () => (parsed = await parseAlerts('api_v2', body(bad), new Date(), bigLimits)))).toBeGreaterThan(2);
    expect(parsed!.events).toHaveLength(5_000);
    expect(parsed!.refused).toEqual({ refused: 1, problems: [{ path: 'alerts[5000].labels.alertname', message: 'required: labels.alertname' }] });
  });

  it.each(['api_v2', 'api_v1', 'webhook'] as const)('takes the valid alerts of a %s batch and names each refused one by its index, as Alertmanager does', async (format) => {
    const alerts = [
      { labels: { alertname: 'Noisy', team: 'x'.repeat(65) } },
      { labels: { alertname: 'SpotTerminationNotice', instance_id: 'i-1' } },
      { labels: { instance_id: 'i-2' } },
      { labels: { alertname: 'SpotTerminationNotice', instance_id: 'i-3' }, startsAt: 'yesterday' },
      { labels: { alertname: 'SpotTerminationNotice', instance_id: 'i-4' } },
    ].map((alert) => (format === 'webhook' ? { status: 'firing', ...alert } : alert));
    const { events, refused } = await parseAlerts(format, body(format === 'webhook' ? { version: '4', alerts } : alerts), new Date(), limits);
    expect(events.map((e) => e.data!.labels.instance_id)).toEqual(['i-1', 'i-4']);
    expect(refused).toEqual({
      refused: 3,
      problems: [
        { path: 'alerts[0].labels.team', message: 'longer than the limit of 64 characters' },
        { path: 'alerts[2].labels.alertname', message: 'required: labels.alertname' },
        { path: 'alerts[3].startsAt', message: 'expected an RFC 3339 time' },
      ],
    });
  });

  it.each(['api_v2', 'webhook'] as const)('keeps only the problems a %s 400 lists, and counts the rest, however many alerts are bad', async (format) => {
    // Every problem kept, a bad megabyte of alerts (1,000 with 127 bad labels each) kept 125,000 (11 MB) until the answer was sent.
    const bad = (i: number) => ({ labels: { alertname: `Bad${i}`, a: 1, b: 2, c: 3 }, ...(format === 'webhook' && { status: 'firing' }) });
    const alerts = [...Array.from({ length: 99 }, (_, i) => bad(i)), { labels: { alertname: 'Good' }, ...(format === 'webhook' && { status: 'firing' }) }];
    const { events, refused } = await parseAlerts(format, body(format === 'webhook' ? { version: '4', alerts } : alerts), new Date(), limits);
    expect(events).toHaveLength(1);
    expect(refused.refused).toBe(99);
    expect(refused.problems).toEqual([
      { path: 'alerts[0].labels.a', message: 'expected a string value' },
      { path: 'alerts[0].labels.b', message: 'expected a string value' },
      { path: 'alerts[0].labels.c', message: 'expected a string value' },
      { path: 'alerts[1].labels.a', message: 'expected a string value' },
      { path: 'alerts[1].labels.b', message: 'expected a string value' },
    ]);
    expect(refused.unlisted).toBe(99 * 3 - 5);
    expect(problemsText(refused.problems, 5, refused.unlisted)).toMatch(/; alerts\[1\]\.labels\.b: expected a string value; and 292 more$/);
  });

  it.each(['api_v2', 'api_v1', 'webhook'] as const)('refuses a %s body nested past MAX_ALERT_BODY_DEPTH without parsing it', async (format) => {
    // A megabyte of `[` held the thread for a third of a second in JSON.parse, only to be refused after.
    const deep = Buffer.from('['.repeat(MAX_ALERT_BODY_DEPTH + 1) + ']'.repeat(MAX_ALERT_BODY_DEPTH + 1));
    const parse = vi.spyOn(JSON, 'parse');
    try {
      expect(await refusal(() => parseAlerts(format, deep, new Date(), limits))).toEqual({ status: 400, message: `body: nested more than ${MAX_ALERT_BODY_DEPTH} levels deep` });
      expect(parse).not.toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
  });

  it.each(['api_v2', 'webhook'] as const)('counts a %s alert\'s labels before validating them: one with too many is refused without zod reading it', async (format) => {
    const many = { labels: { alertname: 'A', ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`l${i}`, 'x'])) }, ...(format === 'webhook' && { status: 'firing' }) };
    const good = { labels: { alertname: 'B' }, ...(format === 'webhook' && { status: 'firing' }) };
    const request = format === 'webhook' ? { version: '4', alerts: [good, many] } : [good, many];
    const safeParse = vi.spyOn(format === 'webhook' ? webhookAlertSchema : postableAlertSchema, 'safeParse');
    try {
      const parsed = await parseAlerts(format, body(request), new Date(), limits);
      expect(parsed.events).toHaveLength(1);
      expect(parsed.refused).toEqual({ refused: 1, problems: [{ path: 'alerts[1].labels', message: '11 labels, more than the limit of 10' }] });
      expect(safeParse.mock.calls.map(([item]) => item)).toEqual([good]);
    } finally {
      safeParse.mockRestore();
    }
  });

  it('takes an empty time or Go\'s zero time as unset, as Alertmanager does: one alert, one id, however the sender wrote it', async () => {
    const at = new Date('2026-11-25T10:00:00.5Z');
    const eventOf = async (times: object) => (await eventsOf('api_v2', body([{ labels: { alertname: 'A' }, ...times }]), at, limits))[0]!;
    const without = await eventOf({});
    for (const unset of ['', '0001-01-01T00:00:00Z']) expect(await eventOf({ startsAt: unset, endsAt: unset })).toEqual(without);
    expect(without).toMatchObject({ time: '2026-11-25T10:00:00.5Z', data: { status: 'firing', startsAt: '', endsAt: '' } });
  });

  it('tells the alerts Alertmanager left out of a webhook payload (truncatedAlerts), and takes a bad count as none', async () => {
    const payload = webhookFiring as Record<string, unknown>;
    const parsed = await parseAlerts('webhook', body({ ...payload, truncatedAlerts: 7 }), new Date(), limits);
    expect(parsed.leftOut).toEqual({ count: 7, group: payload.groupKey });
    expect(parsed.events).toHaveLength(1);
    const { groupKey: _, ...withoutKey } = payload;
    expect((await parseAlerts('webhook', body({ ...withoutKey, truncatedAlerts: 2 }), new Date(), limits)).leftOut).toEqual({ count: 2, group: '' });
    for (const truncatedAlerts of [0, -1, 1.5, 'seven']) {
      const other = await parseAlerts('webhook', body({ ...payload, truncatedAlerts }), new Date(), limits);
      expect(other.leftOut).toBeUndefined();
      expect(other.events).toHaveLength(1);
    }
  });

  it('refuses a webhook body that is no payload, saying what a payload is, and an alert whose status is neither firing nor resolved', async () => {
    expect((await refusal(() => parseAlerts('webhook', body([]), new Date(), limits))).message).toContain(
      'expected an Alertmanager webhook payload, a JSON object with version "4" (a JSON array of alerts goes to /api/v2/alerts)',
    );
    const alerts = [{ labels: { alertname: 'A' }, status: 'pending' }, { labels: { alertname: 'B' }, status: 'resolved' }];
    const parsed = await parseAlerts('webhook', body({ version: '4', alerts }), new Date(), limits);
    expect(parsed.events.map((e) => e.type)).toEqual(['prometheus.server.alert.B.resolved']);
    expect(parsed.refused).toMatchObject({ refused: 1, problems: [{ path: 'alerts[0].status' }] });
  });

  it('a webhook alert without a fingerprint gets the one its labels give, as from Prometheus', async () => {
    const labels = { alertname: 'A', node: 'n-1' };
    const [fromWebhook] = await eventsOf('webhook', body({ version: '4', alerts: [{ labels, status: 'firing', startsAt }] }), new Date(startsAt), limits);
    const [fromPrometheus] = await eventsOf('api_v2', body([{ labels, startsAt }]), new Date(startsAt), limits);
    expect((fromWebhook!.data as AlertEventData).fingerprint).toBe((fromPrometheus!.data as AlertEventData).fingerprint);
    expect(fromWebhook!.source).toBe('urn:hollowtrees:receiver');
  });

  it('refuses a webhook payload of another version', async () => {
    const err = await refusal(() => parseAlerts('webhook', body({ ...(webhookFiring as object), version: '3' }), new Date(), limits));
    expect(err.message).toBe('version: expected version "4" (Alertmanager webhook payload)');
  });
});
