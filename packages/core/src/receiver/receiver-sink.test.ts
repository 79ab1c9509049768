import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { CloudEvent } from '@hollowtrees/grpcplugin';
import { parseConfig } from '../config/load-config.js';
import type { Drop, EventSink } from '../sources/event-sink.js';
import type { StateBackend } from '../state/run-state-store.js';
import { Receiver } from './receiver-server.js';
import { ReceiverMetrics } from './receiver-metrics.js';

/** Where the receiver hands events in these tests: what it answers is set per test. */
interface TestSink extends EventSink {
  events: CloudEvent[];
  drops: Drop[];
  /** What `noRoom` answers. */
  full: string | undefined;
  commits: boolean;
  /** The `since` of each commit, in order. */
  commitsSince: Array<number | undefined>;
  durable: boolean;
  backend: StateBackend;
}

/** A receiver over real HTTP on a loopback port, in front of a sink the test steers. */
async function receiverWith(server = ''): Promise<{ url: string; sink: TestSink; receiver: Receiver; metrics: ReceiverMetrics; logged: string[]; broken: { runs: boolean }; close: () => Promise<void> }> {
  const { config } = parseConfig(`${server}flows:\n  f: { allowedEvents: [x], plugins: [log] }\n`, 'test.yaml', {});
  const sink: TestSink = {
    events: [],
    drops: [],
    full: undefined,
    commits: true,
    commitsSince: [],
    durable: true,
    backend: 'file',
    accept(event) {
      this.events.push(event);
      return { matched: 1, started: this.drops.length === 0 ? 1 : 0, deduplicated: 0, dropped: this.drops };
    },
    // The events taken so far: a mark taken before a batch's first event says how many came before it.
    mark() {
      return this.events.length;
    },
    commit(since) {
      this.commitsSince.push(since);
      return Promise.resolve(this.commits);
    },
    noRoom() {
      return this.full;
    },
  };
  const metrics = new ReceiverMetrics(new Registry());
  const logged: string[] = [];
  const broken = { runs: false };
  const runs = (): unknown[] => {
    if (broken.runs) throw new Error('status provider failed');
    return [{ run: 1 }];
  };
  const receiver: Receiver = new Receiver({
    host: '127.0.0.1', port: 0, limits: config.server.limits, timeouts: config.server.timeouts, metrics, logger: pino({ level: 'error' }, { write: (line: string) => void logged.push(line) }),
    status: { flows: () => [{ name: 'f' }], groups: (limit) => ({ groups: Array.from({ length: Math.min(limit, 1_500) }, (_, i) => ({ i })), total: 1_500 }), runs, sources: (): unknown => [receiver.status()], state: () => ({ backend: 'memory', survivesRestart: false, writable: true }) },
  });
  await receiver.start(sink);
  const { port } = receiver.address;
  return { url: `http://127.0.0.1:${port}`, sink, receiver, metrics, logged, broken, close: () => receiver.close() };
}

const alerts = (n: number): string => JSON.stringify(Array.from({ length: n }, (_, i) => ({ labels: { alertname: 'Spot', instance_id: `i-${i}` } })));
const post = (url: string, body = alerts(1)): Promise<Response> => fetch(`${url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
const answer = async (res: Response): Promise<{ status: number; retryAfter: string | null; connection: string | null; body: unknown }> => ({
  status: res.status, retryAfter: res.headers.get('retry-after'), connection: res.headers.get('connection'), body: await res.json(),
});

describe('receiver in front of a sink that cannot take everything', () => {
  it('commits each batch from a mark taken before its first event: a claim that failed while the batch was dispatched counts against it', async () => {
    const r = await receiverWith();
    try {
      expect(await answer(await post(r.url, alerts(3)))).toMatchObject({ status: 200 });
      expect(await answer(await post(r.url, alerts(2)))).toMatchObject({ status: 200 });
      expect(r.sink.commitsSince).toEqual([0, 3]);
    } finally {
      await r.close();
    }
  });

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
      // Shared run state: the message names what cannot be reached, not a disk.
      r.sink.backend = 'kubernetes';
      expect(await answer(await post(r.url))).toMatchObject({
        status: 503,
        body: { errorType: 'state_unavailable', error: 'run state cannot be checked with the Kubernetes API server right now, so the alerts cannot be promised; retry later' },
      });
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

  it('refuses a batch no flow has room for before parsing it (503 queue_full), keeping the connection', async () => {
    const r = await receiverWith();
    try {
      r.sink.full = 'flow "spot": it holds 67108000 bytes of events (queueBytes)';
      // Not JSON at all: answered 503, not 400, because it was never parsed.
      const body = '[{"labels": not json';
      expect(await answer(await post(r.url, body))).toEqual({
        status: 503, retryAfter: '1', connection: 'keep-alive',
        body: { status: 'error', errorType: 'queue_full', error: 'no alerts can be queued now (flow "spot": it holds 67108000 bytes of events (queueBytes)); retry later' },
      });
      expect(r.sink.events).toEqual([]);
      expect(await r.metrics.registry.getSingleMetricAsString('hollowtrees_requests_rejected_total')).toContain('hollowtrees_requests_rejected_total{reason="queue_full"} 1');
      // Room again: parsed and taken.
      r.sink.full = undefined;
      expect(await answer(await post(r.url, alerts(2)))).toMatchObject({ status: 200, body: { accepted: 2 } });
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

  it('serves the status routes from the provider, groups up to 1,000 unless a positive whole limit is asked for, and a 400 for any other limit', async () => {
    const r = await receiverWith();
    try {
      const get = async (path: string): Promise<{ status: number; total: string | null; type: string | null; body: unknown }> => {
        const res = await fetch(`${r.url}${path}`);
        return { status: res.status, total: res.headers.get('x-total-count'), type: res.headers.get('content-type'), body: await res.json() };
      };
      expect(await get('/api/v1/status/flows')).toEqual({ status: 200, total: null, type: 'application/json', body: [{ name: 'f' }] });
      expect(await get('/api/v1/status/runs')).toMatchObject({ status: 200, body: [{ run: 1 }] });
      for (const limit of ['', '?limit=']) {
        const groups = await get(`/api/v1/status/groups${limit}`);
        expect([limit, (groups.body as unknown[]).length, groups.total]).toEqual([limit, 1_000, '1500']);
      }
      for (const [limit, shown] of [['0', '"0"'], ['-5', '"-5"'], ['2.5', '"2.5"'], ['x', '"x"'], ['1e3', '"1e3"']]) {
        for (const path of ['/api/v1/status/groups', '/api/v1/status']) {
          expect([path, limit, await get(`${path}?limit=${limit}`)]).toMatchObject([
            path,
            limit,
            { status: 400, body: { status: 'error', error: `query parameter limit: expected a positive whole number, got ${shown}` } },
          ]);
        }
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

  it('serves every rejection reason and every path\'s received series at 0 before any request, so increase() sees the first one', async () => {
    const r = await receiverWith();
    try {
      const text = await (await fetch(`${r.url}/metrics`)).text();
      const zeros = (name: string): string[] => text.split('\n').filter((l) => l.startsWith(`${name}{`) && l.endsWith(' 0'));
      expect(zeros('hollowtrees_requests_rejected_total')).toHaveLength(18);
      expect(text).toContain('hollowtrees_requests_rejected_total{reason="unauthorized"} 0');
      expect(text).toContain('hollowtrees_requests_rejected_total{reason="unauthorized_read"} 0');
      expect(text).toContain('hollowtrees_requests_rejected_total{reason="queue_full"} 0');
      expect(zeros('hollowtrees_events_received_total').sort()).toEqual([
        ...['api_v1', 'api_v2', 'webhook'].flatMap((source) => ['', '.resolved'].map((end) => `hollowtrees_events_received_total{source="${source}",type="prometheus.server.alert.*${end}"} 0`)),
        ...['batch', 'binary', 'structured'].map((mode) => `hollowtrees_events_received_total{source="cloudevents_${mode}",type="*"} 0`),
      ].sort());
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

/** Writes `data` and resolves with everything read once the text so far matches `until`. */
function exchange(socket: Socket, data: string, until: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (chunk: Buffer): void => {
      got += chunk.toString('latin1');
      if (!until.test(got)) return;
      socket.off('data', onData);
      resolve(got);
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(data);
  });
}

const rejected = async (r: { metrics: ReceiverMetrics }): Promise<string> => (await r.metrics.registry.getSingleMetricAsString('hollowtrees_requests_rejected_total'));

describe('what the receiver hands on, and its edges (the receiver/ mutation round)', () => {
  it('gives one alert one id whatever its label order, the receiver as source without a generatorURL, and empty times for unset or empty ones', async () => {
    const r = await receiverWith();
    try {
      const body = JSON.stringify([
        { labels: { alertname: 'Spot', instance_id: 'i-1', zone: 'a' }, startsAt: '', endsAt: '' },
        { labels: { zone: 'a', instance_id: 'i-1', alertname: 'Spot' } },
      ]);
      expect((await post(r.url, body)).status).toBe(200);
      const [first, second] = r.sink.events;
      expect(second!.id).toBe(first!.id);
      // The id is what makes a re-sent alert the same event; a new version must not change it.
      expect(first!.id).toBe('25e79e472e23e509fd53a425ea744012');
      expect(first).toMatchObject({ source: 'urn:hollowtrees:receiver', data: { startsAt: '', endsAt: '', generatorURL: '' } });
    } finally {
      await r.close();
    }
  });

  it('gives a webhook alert without a fingerprint the labels\' fingerprint, the one the v2 path computes', async () => {
    const r = await receiverWith();
    try {
      const labels = { alertname: 'Spot', instance_id: 'i-1' };
      expect((await post(r.url, JSON.stringify([{ labels }]))).status).toBe(200);
      const webhook = { version: '4', alerts: [{ labels, status: 'firing' }] };
      expect((await fetch(`${r.url}/webhook/alertmanager`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(webhook) })).status).toBe(200);
      const [v2, hook] = r.sink.events.map((e) => (e.data as { fingerprint: string }).fingerprint);
      expect(v2).toMatch(/^[0-9a-f]{16}$/);
      expect(hook).toBe(v2);
    } finally {
      await r.close();
    }
  });

  it('takes a label name and value of exactly maxLabelLength', async () => {
    const r = await receiverWith('server:\n  limits: { maxLabelLength: 16 }\n');
    try {
      const res = await post(r.url, JSON.stringify([{ labels: { alertname: 'Spot', ['n'.repeat(16)]: 'v'.repeat(16) } }]));
      expect(await answer(res)).toMatchObject({ status: 200, body: { accepted: 1 } });
    } finally {
      await r.close();
    }
  });

  it('counts firing and resolved alerts under their own type family', async () => {
    const r = await receiverWith();
    try {
      const gone = { labels: { alertname: 'Gone' }, endsAt: '2020-01-01T00:00:00Z' };
      expect((await post(r.url, JSON.stringify([{ labels: { alertname: 'A' } }, { labels: { alertname: 'B' } }, gone]))).status).toBe(200);
      const text = await r.metrics.registry.metrics();
      expect(text).toContain('hollowtrees_events_received_total{source="api_v2",type="prometheus.server.alert.*"} 2');
      expect(text).toContain('hollowtrees_events_received_total{source="api_v2",type="prometheus.server.alert.*.resolved"} 1');
    } finally {
      await r.close();
    }
  });

  it('quotes at most 100 characters of a wrong Content-Type in its 415', async () => {
    const r = await receiverWith();
    try {
      const res = await fetch(`${r.url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': `text/${'x'.repeat(300)}` }, body: '[]' });
      expect(await answer(res)).toMatchObject({ status: 415, body: { error: `Content-Type must be application/json, got ${JSON.stringify(`text/${'x'.repeat(95)}`)}` } });
    } finally {
      await r.close();
    }
  });

  it('answers a failing route with a 500 that says nothing inside, logs it once with its path, and goes on serving', async () => {
    const r = await receiverWith();
    try {
      r.broken.runs = true;
      expect(await answer(await fetch(`${r.url}/api/v1/status/runs?x=1`))).toMatchObject({ status: 500, body: { status: 'error', errorType: 'internal', error: 'internal error' } });
      expect(r.logged).toHaveLength(1);
      expect(JSON.parse(r.logged[0]!)).toMatchObject({ level: 50, msg: 'receiver failed on a request', path: '/api/v1/status/runs?x=1', err: { message: 'status provider failed' } });
      expect(await rejected(r)).toContain('reason="internal"} 1');
      expect(r.receiver.status()).toMatchObject({ errors: 1, lastError: { message: '500 internal: internal error' } });
      expect((await fetch(`${r.url}/-/healthy`)).status).toBe(200);
      expect(await answer(await post(r.url, JSON.stringify({})))).toMatchObject({ status: 400 });
      expect(r.logged).toHaveLength(1); // a refused request is no internal error
    } finally {
      await r.close();
    }
  });

  it('logs a failed accept (the listening server\'s error event) and goes on serving, instead of ending the process', async () => {
    const r = await receiverWith();
    try {
      // What Node's net module emits when accept() fails (ENFILE, ENOBUFS): an error event on the listening server.
      const accept = Object.assign(new Error('accept ENFILE'), { code: 'ENFILE', syscall: 'accept' });
      (r.receiver as unknown as { server: import('node:net').Server }).server.emit('error', accept);
      expect(r.logged.map((line) => JSON.parse(line) as object)).toMatchObject([{ level: 50, msg: 'receiver could not accept a connection; still serving', err: { code: 'ENFILE' } }]);
      expect(await answer(await post(r.url))).toMatchObject({ status: 200 });
    } finally {
      await r.close();
    }
  });

  it('takes reloaded limits at once', async () => {
    const r = await receiverWith();
    try {
      const { config } = parseConfig('server:\n  limits: { maxBodyBytes: 1024 }\nflows:\n  f: { allowedEvents: [x], plugins: [log] }\n', 'test.yaml', {});
      r.receiver.update({ limits: config.server.limits });
      expect(await answer(await post(r.url, alerts(30)))).toMatchObject({ status: 413, body: { errorType: 'too_large' } });
    } finally {
      await r.close();
    }
  });

  it('refuses to start on a port already taken, with the listen error', async () => {
    const r = await receiverWith();
    const { config } = parseConfig('flows:\n  f: { allowedEvents: [x], plugins: [log] }\n', 'test.yaml', {});
    const second = new Receiver({
      host: '127.0.0.1', port: r.receiver.address.port, limits: config.server.limits, timeouts: config.server.timeouts,
      metrics: new ReceiverMetrics(new Registry()), logger: pino({ level: 'silent' }), status: { flows: () => [], groups: () => ({ groups: [], total: 0 }), runs: () => [], sources: () => [], state: () => ({ backend: 'memory', survivesRestart: false, writable: true }) },
    });
    try {
      await expect(second.start(r.sink)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      await r.close();
    }
  });

  it('closes the connection after refusing an upload it did not read, even to a client that goes on sending, and keeps it after refusing a complete request', async () => {
    const r = await receiverWith('server:\n  limits: { maxBodyBytes: 1024 }\n');
    const socket = connect({ port: r.receiver.address.port, host: '127.0.0.1', allowHalfOpen: true });
    try {
      await once(socket, 'connect');
      const notFound = await exchange(socket, 'GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n', /\r\n\r\n[^]*\}$/);
      expect(notFound).toMatch(/^HTTP\/1\.1 404 /);
      expect(notFound).not.toMatch(/connection: close/i); // the same connection takes the next request
      const closed = new Promise((resolve) => socket.once('close', resolve)); // after an error too (a write the server reset)
      const tooLarge = await exchange(socket, `POST /api/v2/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n500\r\n${' '.repeat(0x500)}\r\n`, /\r\n\r\n[^]*\}$/);
      expect(tooLarge).toMatch(/^HTTP\/1\.1 413[^]*Connection: close/i);
      socket.on('error', () => undefined); // the server's reset to what this client goes on sending
      const sending = setInterval(() => socket.writable && socket.write(`500\r\n${' '.repeat(0x500)}\r\n`), 20);
      await closed.finally(() => clearInterval(sending)); // the server reads no more of it: not until the 30 s body timeout
    } finally {
      socket.destroy();
      await r.close();
    }
  });

  it('answers a malformed request on a kept-alive connection with a bare 400, counted, after a good one', async () => {
    const r = await receiverWith();
    const socket = connect(r.receiver.address.port, '127.0.0.1');
    try {
      await once(socket, 'connect');
      expect(await exchange(socket, 'GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n', /Healthy\n$/)).toMatch(/^HTTP\/1\.1 200/);
      expect(await exchange(socket, 'NOT HTTP AT ALL\r\n\r\n', /\r\n\r\n$/)).toBe('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      expect(await rejected(r)).toContain('reason="bad_request"} 1');
    } finally {
      socket.destroy();
      await r.close();
    }
  });

  it('answers headers over Node\'s size limit with a bare 431, not a 400 that says nothing of why, and counts it', async () => {
    const r = await receiverWith();
    const socket = connect(r.receiver.address.port, '127.0.0.1');
    try {
      await once(socket, 'connect');
      // A binary-mode CloudEvent whose ce-* headers pass Node's 16 KiB: the sender must learn it is the headers.
      const head = `POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nce-specversion: 1.0\r\nce-note: ${'n'.repeat(17 * 1024)}\r\nContent-Length: 2\r\n\r\n{}`;
      expect(await exchange(socket, head, /\r\n\r\n$/)).toBe('HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n');
      expect(await rejected(r)).toContain('reason="bad_request"} 1');
    } finally {
      socket.destroy();
      await r.close();
    }
  });

  it('counts a body cut off by its client as ended early and gives the request slot back', async () => {
    const r = await receiverWith();
    const socket = connect(r.receiver.address.port, '127.0.0.1');
    try {
      await once(socket, 'connect');
      socket.write('POST /api/v2/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[{"labels"');
      await expect.poll(() => r.receiver.status().inFlight).toBe(1);
      socket.destroy();
      await expect.poll(() => r.receiver.status().inFlight).toBe(0);
      expect(r.receiver.status()).toMatchObject({ errors: 1, lastError: { message: '400 bad_data: request body ended early: the client closed the connection' } });
    } finally {
      await r.close();
    }
  });

  it('close() does not wait for a client stalled in its body: its connection goes within about a second', async () => {
    const r = await receiverWith();
    const socket = connect(r.receiver.address.port, '127.0.0.1');
    try {
      await once(socket, 'connect');
      socket.write('POST /api/v2/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[');
      await expect.poll(() => r.receiver.status().inFlight).toBe(1);
      const closed = once(socket, 'close');
      await r.close(); // the body timeout is 30 s, far past this test's 5 s
      await closed;
      expect(r.receiver.status().state).toBe('stopped');
    } finally {
      socket.destroy();
    }
  });
});
