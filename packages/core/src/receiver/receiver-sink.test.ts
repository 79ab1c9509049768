import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { CloudEvent } from '@hollowtrees/grpcplugin';
import { parseConfig } from '../config/load-config.js';
import type { Drop, EventSink } from '../sources/event-sink.js';
import { Receiver } from './receiver-server.js';
import { ReceiverMetrics } from './receiver-metrics.js';

/** Where the receiver hands events in these tests: what it answers is set per test. */
interface TestSink extends EventSink {
  events: CloudEvent[];
  drops: Drop[];
  commits: boolean;
  durable: boolean;
}

/** A receiver over real HTTP on a loopback port, in front of a sink the test steers. */
async function receiverWith(server = ''): Promise<{ url: string; sink: TestSink; receiver: Receiver; metrics: ReceiverMetrics; close: () => Promise<void> }> {
  const { config } = parseConfig(`${server}flows:\n  f: { allowedEvents: [x], plugins: [log] }\n`, 'test.yaml', {});
  const sink: TestSink = {
    events: [],
    drops: [],
    commits: true,
    durable: true,
    accept(event) {
      this.events.push(event);
      return { matched: 1, started: this.drops.length === 0 ? 1 : 0, deduplicated: 0, dropped: this.drops };
    },
    commit() {
      return Promise.resolve(this.commits);
    },
  };
  const metrics = new ReceiverMetrics(new Registry());
  const receiver: Receiver = new Receiver({
    host: '127.0.0.1', port: 0, limits: config.server.limits, timeouts: config.server.timeouts, metrics, logger: pino({ level: 'silent' }),
    status: { flows: () => [{ name: 'f' }], groups: (limit) => ({ groups: Array.from({ length: Math.min(limit, 1_500) }, (_, i) => ({ i })), total: 1_500 }), runs: () => [{ run: 1 }], sources: (): unknown => [receiver.status()] },
  });
  await receiver.start(sink);
  const { port } = receiver.address;
  return { url: `http://127.0.0.1:${port}`, sink, receiver, metrics, close: () => receiver.close() };
}

const alerts = (n: number): string => JSON.stringify(Array.from({ length: n }, (_, i) => ({ labels: { alertname: 'Spot', instance_id: `i-${i}` } })));
const post = (url: string, body = alerts(1)): Promise<Response> => fetch(`${url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
const answer = async (res: Response): Promise<{ status: number; retryAfter: string | null; connection: string | null; body: unknown }> => ({
  status: res.status, retryAfter: res.headers.get('retry-after'), connection: res.headers.get('connection'), body: await res.json(),
});

describe('receiver in front of a sink that cannot take everything', () => {
  it('answers 200 with the count only once what it accepted is durable, and 503 when it cannot be saved', async () => {
    const r = await receiverWith();
    try {
      expect(await answer(await post(r.url, alerts(2)))).toMatchObject({ status: 200, body: { status: 'success', accepted: 2 } });
      r.sink.commits = false;
      expect(await answer(await post(r.url))).toEqual({
        status: 503, retryAfter: '5', connection: 'keep-alive',
        body: { status: 'error', errorType: 'state_unavailable', error: 'run state cannot be saved to disk right now, so the alerts cannot be promised; retry later' },
      });
      r.sink.commits = true;
      r.sink.durable = false;
      const events = r.sink.events.length;
      expect(await answer(await post(r.url))).toMatchObject({ status: 503, body: { errorType: 'state_unavailable' } });
      expect(r.sink.events).toHaveLength(events); // refused before anything was handed on
      const ready = await fetch(`${r.url}/-/ready`);
      expect([ready.status, await ready.text()]).toEqual([503, 'Not ready\n']);
    } finally {
      await r.close();
    }
  });

  it('asks for a re-send (503) when a flow had no room for some alerts, saying how many and why', async () => {
    const r = await receiverWith();
    try {
      r.sink.drops = [{ flow: 'spot', reason: 'queue_full', detail: 'its queue is full (queueSize 3)' }];
      expect(await answer(await post(r.url, alerts(3)))).toEqual({
        status: 503, retryAfter: '1', connection: 'keep-alive',
        body: { status: 'error', errorType: 'queue_full', error: '3 of 3 alerts were not queued by every flow they match (flow "spot": its queue is full (queueSize 3)); retry later' },
      });
      r.sink.drops = [{ flow: 'spot', reason: 'too_many_groups' }];
      expect(await answer(await post(r.url, alerts(1)))).toMatchObject({ status: 503, body: { errorType: 'too_many_groups', error: '1 of 1 alerts were not queued by every flow they match (flow "spot": no room); retry later' } });
      r.sink.drops = [{ flow: 'spot', reason: 'shutting_down' }];
      expect(await answer(await post(r.url))).toEqual({
        status: 503, retryAfter: null, connection: 'close',
        body: { status: 'error', errorType: 'shutting_down', error: 'shutting down; send to another replica or retry later' },
      });
      expect(await r.metrics.registry.getSingleMetricAsString('hollowtrees_requests_rejected_total')).toMatch(/reason="queue_full"} 1\n[^]*reason="too_many_groups"} 1\n[^]*reason="shutting_down"} 1/);
    } finally {
      await r.close();
    }
  });

  it('once it stops accepting: not ready, and alerts get 503 shutting_down with the connection closed', async () => {
    const r = await receiverWith();
    try {
      await r.receiver.stop();
      const ready = await fetch(`${r.url}/-/ready`);
      expect([ready.status, await ready.text()]).toEqual([503, 'Not ready\n']);
      expect(await answer(await post(r.url))).toMatchObject({ status: 503, connection: 'close', body: { errorType: 'shutting_down' } });
      const healthy = await fetch(`${r.url}/-/healthy`);
      expect([healthy.status, healthy.headers.get('content-type'), await healthy.text()]).toEqual([200, 'text/plain; charset=utf-8', 'Healthy\n']);
      expect(r.sink.events).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it('serves the status routes from the provider, groups up to 1,000 unless a positive whole limit is asked for', async () => {
    const r = await receiverWith();
    try {
      const get = async (path: string): Promise<{ status: number; total: string | null; type: string | null; body: unknown }> => {
        const res = await fetch(`${r.url}${path}`);
        return { status: res.status, total: res.headers.get('x-total-count'), type: res.headers.get('content-type'), body: await res.json() };
      };
      expect(await get('/api/v1/status/flows')).toEqual({ status: 200, total: null, type: 'application/json', body: [{ name: 'f' }] });
      expect(await get('/api/v1/status/runs')).toMatchObject({ status: 200, body: [{ run: 1 }] });
      for (const limit of ['', '?limit=0', '?limit=-5', '?limit=2.5', '?limit=x']) {
        const groups = await get(`/api/v1/status/groups${limit}`);
        expect([limit, (groups.body as unknown[]).length, groups.total]).toEqual([limit, 1_000, '1500']);
      }
      expect((await get('/api/v1/status/groups?limit=1')).body).toEqual([{ i: 0 }]);
      expect(await get('/api/v1/status?limit=2')).toMatchObject({ body: { flows: [{ name: 'f' }], groups: [{ i: 0 }, { i: 1 }], groupsTotal: 1_500 } });
      const head = await fetch(`${r.url}/api/v1/status/flows`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      const del = await fetch(`${r.url}/api/v1/status/flows`, { method: 'DELETE' });
      expect([del.status, del.headers.get('allow')]).toEqual([405, 'GET, HEAD']);
      const getAlerts = await fetch(`${r.url}/api/v1/alerts`);
      expect([getAlerts.status, getAlerts.headers.get('allow'), ((await getAlerts.json()) as { error: string }).error]).toEqual([405, 'POST', 'GET is not allowed on /api/v1/alerts; use POST']);
    } finally {
      await r.close();
    }
  });

  it('keeps connections alive longer than senders\' idle pools, and counts each event by path and type family', async () => {
    const r = await receiverWith();
    try {
      const res = await post(r.url, JSON.stringify([{ labels: { alertname: 'Spot' } }, { labels: { alertname: 'Gone' }, endsAt: '2020-01-01T00:00:00Z' }]));
      expect(res.headers.get('keep-alive')).toBe('timeout=65');
      await res.body?.cancel();
      const text = await r.metrics.registry.metrics();
      expect(text).toContain('hollowtrees_events_received_total{source="api_v2",type="prometheus.server.alert.*"} 1');
      expect(text).toContain('hollowtrees_events_received_total{source="api_v2",type="prometheus.server.alert.*.resolved"} 1');
    } finally {
      await r.close();
    }
  });
});
