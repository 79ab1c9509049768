import { X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestCertificates } from '@hollowtrees/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRecordingPlugin, type RecordingPlugin } from '../../test/support/recording-plugin.js';
import { parseConfig } from '../config/load-config.js';
import { startTestCore, type TestCore } from '../../test/support/start-core.js';

const dir = mkdtempSync(join(tmpdir(), 'hollowtrees-tls-'));
const certs = makeTestCertificates();
const file = (name: string, text: string): string => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};
const caFile = file('ca.pem', certs.ca.cert);
const alerts = JSON.stringify([{ labels: { alertname: 'Spot', instance_id: 'i-auth' } }]);
const FLOW = `
flows:
  spot: { allowedEvents: [prometheus.server.alert.Spot], groupBy: [instance_id], plugins: [log] }
`;

const postWith = (core: TestCore, headers: Record<string, string>) => fetch(`${core.url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: alerts });
/**
 * POSTs `body` as JSON to `path` of an HTTPS core, by the name its test certificate is for, trusting
 * `ca` (none: the system's), on a connection of its own: one kept from before a renewal would not
 * show the certificate served now. Resolves with the status.
 */
const postOverTls = (core: TestCore, path: string, body: string, ca?: string): Promise<number> =>
  new Promise((resolve, reject) => {
    const req = request(`${core.url.replace('127.0.0.1', 'localhost')}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, ...(ca ? { ca } : {}), agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    req.end(body);
  });
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('receiver auth', () => {
  let open: TestCore;
  let guarded: TestCore;
  const TOKEN = 's3cret-token-value';
  beforeAll(async () => {
    open = await startTestCore(FLOW);
    const passwordFile = file('password', 'hunter2\n');
    vi.stubEnv('HT_TEST_TOKEN', TOKEN);
    guarded = await startTestCore(`server:\n  auth:\n    bearerToken: \${HT_TEST_TOKEN}\n    basic: { username: prometheus, passwordFile: "${passwordFile}" }\n${FLOW}`);
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    await open.close();
    await guarded.close();
  });

  it('auth off: alerts are taken without credentials', async () => {
    expect((await postWith(open, {})).status).toBe(200);
  });

  it('auth on: the right bearer token or basic credentials are let in', async () => {
    expect((await postWith(guarded, { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await postWith(guarded, { authorization: basic('prometheus', 'hunter2') })).status).toBe(200);
  });

  it.each([
    ['no credentials', {}],
    ['a wrong token', { authorization: 'Bearer s3cret-token-valuE' }],
    ['a token prefix', { authorization: 'Bearer s3cret' }],
    ['a wrong password', { authorization: basic('prometheus', 'hunter3') }],
    ['a wrong user', { authorization: basic('grafana', 'hunter2') }],
    ['an unknown scheme', { authorization: `Token ${TOKEN}` }],
    ['the token as basic auth', { authorization: `Basic ${TOKEN}` }],
  ])('auth on: %s gets the same 401, which does not say what failed', async (_name, headers) => {
    const res = await postWith(guarded, headers);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('Bearer');
    expect(await res.json()).toEqual({ status: 'error', errorType: 'unauthorized', error: 'unauthorized' });
  });

  it('probes need no credentials; metrics and status do', async () => {
    expect((await fetch(`${guarded.url}/-/healthy`)).status).toBe(200);
    expect((await fetch(`${guarded.url}/-/ready`)).status).toBe(200);
    expect((await fetch(`${guarded.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${guarded.url}/api/v1/status`)).status).toBe(401);
  });

  it("auth on: a scanner's GETs without credentials get the same 401 but count as unauthorized_read, not as the unauthorized that pages: they carried no alert", async () => {
    const rejected = async (): Promise<Record<string, number>> => {
      const metric = await guarded.metrics.registry.getSingleMetric('hollowtrees_requests_rejected_total')!.get();
      return Object.fromEntries(metric.values.map((v) => [String(v.labels.reason), v.value]));
    };
    const before = await rejected();
    for (const [method, path] of [['GET', '/'], ['GET', '/.env'], ['GET', '/metrics'], ['HEAD', '/api/v1/status'], ['GET', '/api/v1/status/runs?limit=1']]) {
      const res = await fetch(`${guarded.url}${path}`, { method });
      expect(res.status).toBe(401);
      if (method === 'GET') expect(await res.json()).toEqual({ status: 'error', errorType: 'unauthorized', error: 'unauthorized' });
    }
    // What may have carried alerts still counts as unauthorized: a POST anywhere, any method on an alert path.
    expect((await postWith(guarded, {})).status).toBe(401);
    expect((await fetch(`${guarded.url}/api/v3/alerts`, { method: 'POST', body: alerts })).status).toBe(401);
    expect((await fetch(`${guarded.url}/api/v2/alerts`)).status).toBe(401);
    const after = await rejected();
    expect(after['unauthorized_read']! - before['unauthorized_read']!).toBe(5);
    expect(after['unauthorized']! - before['unauthorized']!).toBe(3);
  });

  it('never logs the secrets', () => {
    const text = JSON.stringify(guarded.logs);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain('hunter2');
  });
});

describe('TLS', () => {
  let plugin: RecordingPlugin;
  let core: TestCore;
  beforeAll(async () => {
    plugin = await startRecordingPlugin(() => ({ attributes: { over: 'mtls' } }), {
      tls: { cert: certs.server.cert, key: certs.server.key, ca: certs.ca.cert },
    });
    const serverCert = file('server.pem', certs.server.cert);
    const serverKey = file('server-key.pem', certs.server.key);
    const clientCert = file('client.pem', certs.client.cert);
    const clientKey = file('client-key.pem', certs.client.key);
    core = await startTestCore(`
server:
  tls: { cert: "${serverCert}", key: "${serverKey}" }
plugins:
  mtls: { type: grpc, address: "localhost:${plugin.server.port}", retry: { attempts: 1 }, tls: { ca: "${caFile}", cert: "${clientCert}", key: "${clientKey}" } }
  nocert: { type: grpc, address: "localhost:${plugin.server.port}", timeout: 500ms, retry: { attempts: 1 }, tls: { ca: "${caFile}" } }
flows:
  good: { allowedEvents: [prometheus.server.alert.Good], plugins: [mtls] }
  bad: { allowedEvents: [prometheus.server.alert.Bad], plugins: [nocert], runRetry: { attempts: 1 } }
`);
  });
  afterAll(async () => {
    await core.close();
    await plugin.close();
  });

  const httpsPost = (path: string, body: string, ca?: string): Promise<number> => postOverTls(core, path, body, ca);

  it('the receiver serves HTTPS with a certificate made in the test', async () => {
    expect(core.url).toMatch(/^https:/);
    expect(await httpsPost('/api/v2/alerts', JSON.stringify([{ labels: { alertname: 'Good' } }]), certs.ca.cert)).toBe(200);
  });

  it('a client that does not trust the certificate cannot talk to the receiver', async () => {
    await expect(httpsPost('/api/v2/alerts', '[]')).rejects.toThrow(/certificate/);
  });

  it('mTLS towards a plugin: with the client certificate the run succeeds, without it the plugin refuses', async () => {
    await plugin.waitForCalls(1);
    expect(plugin.calls[0]!.flow).toBe('good');
    expect(await httpsPost('/api/v2/alerts', JSON.stringify([{ labels: { alertname: 'Bad' } }]), certs.ca.cert)).toBe(200);
    for (let i = 0; i < 100 && core.engine.recentRuns().length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    const runs = core.engine.recentRuns();
    expect(runs.find((r) => r.flow === 'good')).toMatchObject({ outcome: 'succeeded' });
    expect(runs.find((r) => r.flow === 'bad')).toMatchObject({ outcome: 'failed', error: expect.stringContaining('nocert: UNAVAILABLE') });
    expect(plugin.calls).toHaveLength(1);
  });
});

describe('TLS certificate renewed in place', () => {
  it('without a reload: the receiver serves its renewed certificate, and core presents its renewed client certificate to a plugin', async () => {
    const renewed = makeTestCertificates();
    // The plugin takes only client certificates of the renewed CA: core's first one is refused.
    const plugin = await startRecordingPlugin(() => ({}), { tls: { cert: certs.server.cert, key: certs.server.key, ca: renewed.ca.cert } });
    const cert = file('refreshed-server.pem', certs.server.cert);
    const key = file('refreshed-server-key.pem', certs.server.key);
    const clientCert = file('refreshed-client.pem', certs.client.cert);
    const clientKey = file('refreshed-client-key.pem', certs.client.key);
    const core = await startTestCore(`
server:
  tls: { cert: "${cert}", key: "${key}", refresh: 1s }
plugins:
  mtls: { type: grpc, address: "localhost:${plugin.server.port}", timeout: 1s, retry: { attempts: 1 }, tls: { ca: "${caFile}", cert: "${clientCert}", key: "${clientKey}", refresh: 1s } }
flows:
  spot: { allowedEvents: [prometheus.server.alert.Spot], groupBy: [instance_id], plugins: [mtls], runRetry: { attempts: 1 } }
`);
    const post = (ca: string, instance: string): Promise<number> => postOverTls(core, '/api/v2/alerts', JSON.stringify([{ labels: { alertname: 'Spot', instance_id: instance } }]), ca);
    try {
      expect(await post(certs.ca.cert, 'i-before')).toBe(200);
      await vi.waitFor(() => expect(core.engine.recentRuns()).toEqual([expect.objectContaining({ outcome: 'failed', error: expect.stringContaining('mtls: UNAVAILABLE') })]), { timeout: 10_000, interval: 50 });
      expect(plugin.calls).toHaveLength(0);

      // What cert-manager does before a certificate expires: new files at the same paths, and nothing else.
      writeFileSync(cert, renewed.server.cert);
      writeFileSync(key, renewed.server.key);
      writeFileSync(clientCert, renewed.client.cert);
      writeFileSync(clientKey, renewed.client.key);
      await vi.waitFor(async () => expect(await post(renewed.ca.cert, 'i-after').catch(() => 0)).toBe(200), { timeout: 10_000, interval: 100 });
      await expect(post(certs.ca.cert, 'i-refused')).rejects.toThrow(/certificate/);
      await vi.waitFor(() => expect(core.logs.map((l) => l.msg)).toContain('plugins.mtls.tls files read again: new connections to the plugin use them'), { timeout: 10_000, interval: 50 });
      expect(core.logs.map((l) => l.msg)).toContain('server.tls files read again: new connections get the renewed certificate');
      // The renewed client certificate was read by now; a later alert's run gets through (the channel reconnects).
      await vi.waitFor(
        async () => {
          expect(await post(renewed.ca.cert, `i-${plugin.calls.length}-${Date.now()}`)).toBe(200);
          await plugin.waitForCalls(1, 2_000);
        },
        { timeout: 15_000, interval: 200 },
      );
      expect(plugin.calls[0]!.flow).toBe('spot');
      // The expiry core reports is the renewed certificates'.
      const expiry = (pem: string): number => Date.parse(new X509Certificate(pem).validTo) / 1000;
      const exposition = await core.metrics.registry.metrics();
      expect(exposition).toContain(`hollowtrees_tls_certificate_expiry_timestamp_seconds{certificate="server.tls"} ${expiry(renewed.server.cert)}`);
      expect(exposition).toContain(`hollowtrees_tls_certificate_expiry_timestamp_seconds{certificate="plugins.mtls.tls"} ${expiry(renewed.client.cert)}`);
    } finally {
      await core.close();
      await plugin.close();
    }
  });

  it('a reload serves the renewed certificate and key from the same files, without a restart', async () => {
    const renewed = makeTestCertificates();
    const cert = file('renewed-server.pem', certs.server.cert);
    const key = file('renewed-server-key.pem', certs.server.key);
    const yaml = `server:\n  tls: { cert: "${cert}", key: "${key}" }\n${FLOW}`;
    const core = await startTestCore(yaml);
    const post = (ca: string): Promise<number> => postOverTls(core, '/api/v2/alerts', alerts, ca);
    try {
      expect(await post(certs.ca.cert)).toBe(200);
      // What cert-manager does before the old certificate expires: new files at the same paths, then SIGHUP.
      writeFileSync(cert, renewed.server.cert);
      writeFileSync(key, renewed.server.key);
      await core.reload(parseConfig(yaml, 'test.yaml', process.env));
      expect(core.logs.find((l) => l.msg === 'configuration reloaded')).not.toHaveProperty('needsRestart');
      expect(await post(renewed.ca.cert)).toBe(200);
      await expect(post(certs.ca.cert)).rejects.toThrow(/certificate/);
      // TLS turned off by a reload needs a restart: the receiver still serves the certificate, and the expiry gauge still reports it.
      await core.reload(parseConfig(FLOW, 'test.yaml', process.env));
      expect(core.logs.findLast((l) => l.msg === 'configuration reloaded')).toMatchObject({ needsRestart: ['tls'] });
      expect(await post(renewed.ca.cert)).toBe(200);
      expect(await core.metrics.registry.metrics()).toContain(`hollowtrees_tls_certificate_expiry_timestamp_seconds{certificate="server.tls"} ${Date.parse(new X509Certificate(renewed.server.cert).validTo) / 1000}`);
    } finally {
      await core.close();
    }
  });
});
