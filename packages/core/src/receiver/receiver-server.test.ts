import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '@hollowtrees/grpcplugin/testing';
import { readFixture } from '../../test/support/fixtures.js';
import { startTestCore, type TestCore } from '../../test/support/start-core.js';

const CONFIG = `
server:
  limits: { maxBodyBytes: 4096 }
flows:
  all:
    allowedEvents: [prometheus.server.alert.*]
    groupBy: [instance_id]
    cooldown: 1m
    plugins: [log]
`;

/** Sends raw bytes with a chosen method, so bodies fetch would refuse can be tried. */
function send(core: TestCore, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${core.url}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('receiver', () => {
  let core: TestCore;
  beforeAll(async () => {
    core = await startTestCore(CONFIG);
  });
  afterAll(() => core.close());

  it('accepts a batch on every alert path with 200 and the count', async () => {
    const alerts = [{ labels: { alertname: 'Spot', instance_id: 'i-path' }, startsAt: '2026-11-25T10:00:00Z' }];
    expect(await core.post('/api/v2/alerts', alerts)).toEqual({ status: 200, json: { status: 'success', accepted: 1 } });
    expect(await core.post('/api/v1/alerts', alerts)).toEqual({ status: 200, json: { status: 'success', accepted: 1 } });
    expect(await core.post('/webhook/alertmanager', { version: '4', alerts: alerts.map((a) => ({ ...a, status: 'firing' })) })).toEqual({ status: 200, json: { status: 'success', accepted: 1 } });
  });

  it.each([
    ['Content-Length', false],
    ['chunked', true],
  ])('takes a body of exactly maxBodyBytes and refuses one byte more with 413 (%s)', async (_name, chunked) => {
    // A valid batch padded with spaces to the byte: JSON ignores them, the limit does not.
    const sized = (bytes: number): string => {
      const json = JSON.stringify([{ labels: { alertname: 'Spot', instance_id: `i-limit-${bytes}-${String(chunked)}` } }]);
      return json + ' '.repeat(bytes - Buffer.byteLength(json));
    };
    const headers = (body: string): Record<string, string> => ({ 'content-type': 'application/json', ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(Buffer.byteLength(body)) }) });
    const atLimit = sized(4096);
    expect((await send(core, 'POST', '/api/v2/alerts', atLimit, headers(atLimit))).status).toBe(200);
    const over = sized(4097);
    const refused = await send(core, 'POST', '/api/v2/alerts', over, headers(over));
    expect(refused.status).toBe(413);
    expect(JSON.parse(refused.body)).toMatchObject({ errorType: 'too_large' });
  });

  it('takes the valid alerts of a batch and answers 400 naming the bad one by its index and field, as Alertmanager does', async () => {
    const before = core.engine.groups().length;
    const res = await core.post('/api/v2/alerts', [
      { labels: { alertname: 'Spot', instance_id: 'i-part-1' } },
      { labels: { instance_id: 'i-part-2' } },
    ]);
    expect(res).toEqual({
      status: 400,
      json: { status: 'error', errorType: 'bad_data', error: 'alerts[1].labels.alertname: required: labels.alertname (1 of 2 alerts refused; the other 1 were accepted)', accepted: 1 },
    });
    expect(core.engine.groups().map((g) => g.key).filter((key) => key.includes('i-part-'))).toHaveLength(1);
    expect(core.engine.groups().length).toBe(before + 1);
  });

  it('refuses a batch whose every alert is bad with the 400 alone, and takes nothing', async () => {
    const before = core.engine.groups().length;
    const res = await core.post('/api/v2/alerts', [{ labels: { instance_id: 'i-none-1' } }, { labels: { alertname: 'Spot', instance_id: 5 } }]);
    expect(res).toEqual({
      status: 400,
      json: { status: 'error', errorType: 'bad_data', error: 'alerts[0].labels.alertname: required: labels.alertname; alerts[1].labels.instance_id: expected a string value' },
    });
    expect(core.engine.groups().length).toBe(before);
  });

  it('takes a webhook payload Alertmanager truncated (max_alerts) and warns that the rest of its group never reaches core', async () => {
    const payload = { ...readFixture<Record<string, unknown>>('alertmanager-0.25-webhook-firing.json'), truncatedAlerts: 7 };
    expect(await core.post('/webhook/alertmanager', payload)).toEqual({ status: 200, json: { status: 'success', accepted: 1 } });
    expect(core.logs.filter((l) => l.truncatedAlerts !== undefined)).toEqual([
      expect.objectContaining({ level: 'warn', path: '/webhook/alertmanager', truncatedAlerts: 7, alerts: 1, groupKey: '{}:{instance_id="i-0abc123"}', msg: expect.stringContaining('max_alerts') }),
    ]);
    // Not a number: ignored, as before, and said nothing of.
    expect(await core.post('/webhook/alertmanager', { ...payload, truncatedAlerts: 'seven' })).toMatchObject({ status: 200 });
    expect(core.logs.filter((l) => l.truncatedAlerts !== undefined)).toHaveLength(1);
  });

  it.each([
    ['non-JSON', 'POST', '/api/v2/alerts', 'not json', 400, 'body is not valid JSON'],
    ['a missing labels field', 'POST', '/api/v2/alerts', '[{"annotations":{}}]', 400, 'alerts[0].labels: required'],
    ['GET on an alert path', 'GET', '/api/v2/alerts', undefined, 405, 'GET is not allowed on /api/v2/alerts; use POST'],
    ['POST on a read-only path', 'POST', '/-/healthy', '', 405, 'POST is not allowed on /-/healthy; use GET'],
    ['an unknown path', 'POST', '/api/v3/alerts', '[]', 404, 'no route for /api/v3/alerts'],
  ])('answers %s with a JSON reason', async (_name, method, path, body, status, message) => {
    const res = await send(core, method, path, body, { 'content-type': 'application/json' });
    expect(res.status).toBe(status);
    expect(JSON.parse(res.body).error).toContain(message);
    if (status === 405) expect(res.headers.allow).toBeDefined();
  });

  it('refuses a body over the limit with 413, by Content-Length and when streamed without one', async () => {
    const big = JSON.stringify([{ labels: { alertname: 'A', pad: 'x'.repeat(5000) } }]);
    const declared = await send(core, 'POST', '/api/v2/alerts', big, { 'content-type': 'application/json' });
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body).error).toBe('request body is larger than the limit of 4096 bytes');
    const chunked = await send(core, 'POST', '/api/v2/alerts', big, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    expect(chunked.status).toBe(413);
  });

  it('refuses a compressed body with 415 naming its Content-Encoding, instead of calling it invalid UTF-8; identity is taken', async () => {
    const { body } = readFixture<Array<{ body: unknown }>>('prometheus-2.42-api-v2-alerts.json')[0]!;
    const json = JSON.stringify(body);
    const before = core.engine.groups().length;
    for (const [path, type] of [['/api/v2/alerts', 'application/json'], ['/api/v1/events', 'application/cloudevents-batch+json']] as const) {
      const gzipped = await send(core, 'POST', path, gzipSync(json), { 'content-type': type, 'content-encoding': 'gzip' });
      expect(gzipped.status).toBe(415);
      expect(gzipped.headers['accept-encoding']).toBe('identity');
      expect(JSON.parse(gzipped.body)).toEqual({ status: 'error', errorType: 'unsupported_media_type', error: 'Content-Encoding "gzip" is not taken: send the body uncompressed' });
    }
    expect(core.engine.groups().length).toBe(before);
    expect((await send(core, 'POST', '/api/v2/alerts', json, { 'content-type': 'application/json', 'content-encoding': 'identity' })).status).toBe(200);
  });

  it('serves health, readiness, metrics and status', async () => {
    expect((await send(core, 'GET', '/-/healthy')).status).toBe(200);
    expect((await send(core, 'GET', '/-/ready')).status).toBe(200);
    const metrics = await send(core, 'GET', '/metrics');
    expect(metrics.body).toContain('hollowtrees_events_received_total{source="api_v2",type="prometheus.server.alert.*"}');
    expect(metrics.body).toMatch(/hollowtrees_requests_rejected_total\{reason="bad_data"\} [1-9]/);
    const status = JSON.parse((await send(core, 'GET', '/api/v1/status')).body) as { flows: Array<{ name: string }> };
    expect(status.flows.map((f) => f.name)).toEqual(['all']);
  });

  it('says memory run state does not survive a restart, while hollowtrees_state_durable stays 1 (it can take events)', async () => {
    const status = JSON.parse((await send(core, 'GET', '/api/v1/status')).body) as { state: Record<string, unknown> };
    expect(status.state).toEqual({ backend: 'memory', survivesRestart: false, writable: true });
    expect((await send(core, 'GET', '/metrics')).body).toMatch(/^hollowtrees_state_durable 1$/m);
  });

  it('lists groups up to a limit and says how many there are', async () => {
    await core.post('/api/v2/alerts', ['g-1', 'g-2', 'g-3'].map((id) => ({ labels: { alertname: 'Spot', instance_id: id } })));
    const all = await send(core, 'GET', '/api/v1/status/groups?limit=100000');
    const total = Number(all.headers['x-total-count']);
    expect(total).toBeGreaterThanOrEqual(3);
    expect(JSON.parse(all.body)).toHaveLength(total);
    const two = await send(core, 'GET', '/api/v1/status/groups?limit=2');
    expect(JSON.parse(two.body)).toHaveLength(2);
    expect(two.headers['x-total-count']).toBe(String(total));
    expect(JSON.parse((await send(core, 'GET', '/api/v1/status?limit=1')).body)).toMatchObject({ groups: [expect.any(Object)], groupsTotal: total });
  });

  it('lists the groups and runs of the events asked for (?eventId=, repeatable), the groups counted among theirs', async () => {
    await core.post('/api/v2/alerts', ['e-1', 'e-2', 'e-3'].map((id) => ({ labels: { alertname: 'Spot', instance_id: id } })));
    const everyGroup = JSON.parse((await send(core, 'GET', '/api/v1/status/groups?limit=100000')).body) as Array<{ key: string; eventId: string }>;
    const idOf = (instance: string): string => everyGroup.find((g) => g.key.includes(instance))!.eventId;
    const [first, second] = [idOf('e-1'), idOf('e-2')];
    const query = `eventId=${encodeURIComponent(first)}&eventId=${encodeURIComponent(second)}`;

    const both = await send(core, 'GET', `/api/v1/status/groups?${query}`);
    expect((JSON.parse(both.body) as Array<{ eventId: string }>).map((g) => g.eventId).sort()).toEqual([first, second].sort());
    expect(both.headers['x-total-count']).toBe('2');
    const one = await send(core, 'GET', `/api/v1/status/groups?${query}&limit=1`);
    expect(JSON.parse(one.body)).toHaveLength(1);
    expect(one.headers['x-total-count']).toBe('2');
    expect(JSON.parse((await send(core, 'GET', `/api/v1/status?${query}`)).body)).toMatchObject({ groupsTotal: 2 });

    const runs = JSON.parse((await send(core, 'GET', `/api/v1/status/runs?eventId=${encodeURIComponent(first)}`)).body) as Array<{ eventId: string; outcome: string }>;
    expect(runs).toEqual([expect.objectContaining({ eventId: first, outcome: 'succeeded' })]);
    const unknown = await send(core, 'GET', '/api/v1/status/groups?eventId=never-sent');
    expect([JSON.parse(unknown.body), unknown.headers['x-total-count']]).toEqual([[], '0']);
    expect(JSON.parse((await send(core, 'GET', '/api/v1/status/runs?eventId=never-sent')).body)).toEqual([]);
  });

  it('answers 400 to an empty eventId rather than list every event', async () => {
    for (const path of ['/api/v1/status/groups?eventId=', '/api/v1/status/runs?eventId=a&eventId=', '/api/v1/status?eventId=']) {
      const answer = await send(core, 'GET', path);
      expect([answer.status, JSON.parse(answer.body)]).toEqual([400, expect.objectContaining({ errorType: 'bad_request', error: 'query parameter eventId: expected an event id, got an empty one' })]);
    }
  });

  it('ignores a query string when routing', async () => {
    expect((await send(core, 'GET', '/-/healthy?x=1')).status).toBe(200);
  });
});

describe('receiver with a batch of 10,000 alerts', () => {
  let core: TestCore;
  beforeAll(async () => {
    // No flow takes these alerts: what is measured is the receiver's own work.
    core = await startTestCore('server:\n  limits: { maxBodyBytes: 8388608 }\nflows:\n  none: { allowedEvents: [never.sent], plugins: [log] }\n');
  });
  afterAll(() => core.close());

  it('lets the event loop turn while it dispatches a batch, and refuses its one bad alert alone', async () => {
    const batch = Array.from({ length: 9_999 }, (_, i) => ({ labels: { alertname: 'Big', instance_id: `i-${i}` }, startsAt: '2026-11-25T10:00:00Z' }));
    // Each alert dispatched (to no flow) counts as unmatched at once.
    const dispatched = async (): Promise<number> => (await core.metrics.engine.eventsUnmatched.get()).values[0]?.value ?? 0;
    // Seen between two turns of the event loop while the request is handled: a batch dispatched in one go shows only 0 and 9,999.
    const seen = new Set<number>();
    let posting = true;
    const watching = (async () => {
      while (posting) {
        seen.add(await dispatched());
        await new Promise((r) => setImmediate(r));
      }
    })();
    const res = await core.post('/api/v2/alerts', [...batch, { labels: { instance_id: 'no-name' } }]);
    posting = false;
    await watching;
    expect(res).toMatchObject({ status: 400, json: { error: 'alerts[9999].labels.alertname: required: labels.alertname (1 of 10000 alerts refused; the other 9999 were accepted)', accepted: 9_999 } });
    expect(await dispatched()).toBe(9_999);
    expect([...seen].filter((n) => n > 0 && n < 9_999)).not.toEqual([]);
  });
});

describe('receiver on an injected clock', () => {
  it('reads the time of receipt from the clock: an API v2 alert whose endsAt the clock has passed is a resolution', async () => {
    const clock = manualClock(Date.parse('2030-01-01T00:00:00Z'));
    const core = await startTestCore(CONFIG.replace('prometheus.server.alert.*]', 'prometheus.server.alert.*.resolved]'), { clock });
    try {
      // By the wall clock this alert still fires; by the injected one it ended a year ago.
      const alert = { labels: { alertname: 'Spot', instance_id: 'i-clock' }, startsAt: '2028-01-01T00:00:00Z', endsAt: '2029-01-01T00:00:00Z' };
      expect(await core.post('/api/v2/alerts', [alert])).toMatchObject({ status: 200 });
      expect(core.engine.groups()).toMatchObject([{ flow: 'all', since: clock.now() }]);
    } finally {
      await core.close();
    }
  });
});

describe('status of the sources', () => {
  it('lists the HTTP receiver with its state, last receive, requests in flight and errors', async () => {
    const clock = manualClock(Date.parse('2030-01-01T00:00:00Z'));
    const core = await startTestCore(CONFIG, { clock });
    try {
      const sources = async (): Promise<unknown> => JSON.parse((await send(core, 'GET', '/api/v1/status/sources')).body);
      expect(await sources()).toEqual([{ name: 'http', kind: 'http', state: 'running', inFlight: 0, errors: 0 }]);
      clock.advance(1_000);
      expect(await core.post('/api/v2/alerts', [{ labels: { alertname: 'Spot', instance_id: 'i-status' } }])).toMatchObject({ status: 200 });
      clock.advance(1_000);
      expect(await core.post('/api/v2/alerts', [{ labels: {} }])).toMatchObject({ status: 400 });
      const listed = [{ name: 'http', kind: 'http', state: 'running', inFlight: 0, errors: 1, lastReceiveAt: '2030-01-01T00:00:02.000Z', lastError: { at: '2030-01-01T00:00:02.000Z', message: expect.stringMatching(/^400 bad_data: alerts\[0\]\.labels\.alertname/) } }];
      expect(await sources()).toEqual(listed);
      expect(JSON.parse((await send(core, 'GET', '/api/v1/status')).body)).toMatchObject({ sources: listed });
    } finally {
      await core.close();
    }
  });
});
