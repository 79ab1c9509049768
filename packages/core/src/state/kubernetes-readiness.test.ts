import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKubeApiServer, type KubeApiServer } from '@hollowtrees/testkit';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { startTestCore, type TestCore } from '../../test/support/start-core.js';

/** Core with `state.backend: kubernetes` on the kube-apiserver stand-in, as the ha overlay runs it. */
let api: KubeApiServer;
let core: TestCore | undefined;
beforeEach(async () => {
  api = await startKubeApiServer();
});
afterEach(async () => {
  await core?.close();
  core = undefined;
  await api.close();
  vi.unstubAllEnvs();
});

const LEASES = /\/namespaces\/ops\/leases/;
const ALERT = [{ labels: { alertname: 'SpotInstanceTerminating', instance_id: 'i-rbac' }, startsAt: '2026-11-29T10:00:00Z' }];

async function start(settings = ''): Promise<TestCore> {
  const kubeconfig = join(mkdtempSync(join(tmpdir(), 'hollowtrees-lease-access-')), 'kubeconfig');
  writeFileSync(kubeconfig, api.kubeConfigFileText());
  core = await startTestCore(`state:\n  backend: kubernetes\n  kubernetes: { namespace: ops, kubeconfig: "${kubeconfig}"${settings} }\nflows:\n  spot:\n    allowedEvents: [prometheus.server.alert.SpotInstanceTerminating]\n    groupBy: [instance_id]\n    plugins: [log]\n`);
  return core;
}

const readiness = async (url: string): Promise<number> => (await fetch(`${url}/-/ready`)).status;

it('a replica whose service account may not use Leases (no Role, or a Role in another namespace) is not ready and says why, instead of looking ready and refusing every alert', async () => {
  // RBAC refuses every Lease call of this replica, for the whole test.
  api.failNext(1_000_000, { path: LEASES, code: 403 });
  const app = await start();
  await expect.poll(() => readiness(app.url), { timeout: 10_000, interval: 20 }).toBe(503);
  expect(await app.post('/api/v2/alerts', ALERT)).toMatchObject({ status: 503, json: { errorType: 'state_unavailable' } });
  expect(app.logs.find((l) => l['level'] === 'error')?.['msg']).toMatch(/^the shared run-state store refuses this replica its Leases \(RBAC: its service account needs get, list, create, update and delete on leases in the namespace\)/);
  expect(api.cluster.leases.all()).toEqual([]);
});

it('a replica whose Role grants reading Leases but not creating them is not ready either, instead of looking ready and refusing every alert', async () => {
  // RBAC lets reads through and refuses every create, for the whole test.
  api.failNext(1_000_000, { method: 'POST', path: LEASES, code: 403 });
  const app = await start();
  await expect.poll(() => readiness(app.url), { timeout: 10_000, interval: 20 }).toBe(503);
  expect(await app.post('/api/v2/alerts', ALERT)).toMatchObject({ status: 503, json: { errorType: 'state_unavailable' } });
  expect(app.logs.find((l) => l['level'] === 'error')?.['msg']).toMatch(/^the shared run-state store refuses this replica its Leases \(RBAC/);
});

it('a replica whose API server throttles it (429) at start for longer than a Lease call may take is not ready until the throttling ends, as when it throttles a claim', async () => {
  api.failNext(3, { method: 'GET', path: LEASES, code: 429 });
  // A call is given half the Lease (1 s); a 429 with no Retry-After asks for 1 s before the call is sent again.
  const app = await start(', leaseDuration: 2s, renewInterval: 600ms');
  await expect.poll(() => readiness(app.url), { timeout: 10_000, interval: 20 }).toBe(503);
  await expect.poll(() => api.requests.filter((r) => r.code === 429).length, { timeout: 10_000, interval: 20 }).toBe(3);
  await expect.poll(() => readiness(app.url), { timeout: 10_000, interval: 20 }).toBe(200);
  expect(await app.post('/api/v2/alerts', ALERT)).toMatchObject({ status: 200 });
});

it('once the API server lets it use its Leases, the replica is ready and takes alerts', async () => {
  // The Role arrives after the replica started: its check and first probes are refused.
  api.failNext(3, { method: 'GET', path: LEASES, code: 403 });
  const app = await start();
  await expect.poll(() => api.requests.filter((r) => r.code === 403).length, { timeout: 10_000, interval: 20 }).toBe(3);
  await expect.poll(() => readiness(app.url), { timeout: 10_000, interval: 20 }).toBe(200);
  expect(await app.post('/api/v2/alerts', ALERT)).toMatchObject({ status: 200 });
  expect(app.logs.map((l) => l['msg'])).toContain('the shared run-state store can be used again');
});

it('an unreachable API server: the Lease-call errors at start show the namespace and lease prefix from ${VAR} as written, no part of either', async () => {
  // The prefix is the start of the namespace: replaced first, it left the rest of the namespace ("prod-eu") in the message.
  vi.stubEnv('HT_LEASE_NS', 'spot-prod-eu');
  vi.stubEnv('HT_LEASE_PREFIX', 'spot-');
  api.unreachable = true;
  const kubeconfig = join(mkdtempSync(join(tmpdir(), 'hollowtrees-lease-access-')), 'kubeconfig');
  writeFileSync(kubeconfig, api.kubeConfigFileText());
  core = await startTestCore(`state:\n  backend: kubernetes\n  kubernetes: { namespace: "\${HT_LEASE_NS}", leasePrefix: "\${HT_LEASE_PREFIX}", kubeconfig: "${kubeconfig}" }\nflows:\n  spot:\n    allowedEvents: [prometheus.server.alert.SpotInstanceTerminating]\n    plugins: [log]\n`);
  await expect.poll(() => core!.logs.find((l) => l['level'] === 'error'), { timeout: 10_000, interval: 20 }).toBeDefined();
  const text = JSON.stringify(core.logs);
  expect(text).toContain('namespaces/${HT_LEASE_NS}/leases/${HT_LEASE_PREFIX}probe');
  expect(text).not.toContain('prod-eu');
});

it('an API server failing every claim of a wave: a few log lines say so, not two per alert', async () => {
  const app = await start();
  // The access check at start (a read and a dry-run create) is through: what fails from now on is the claims.
  await expect.poll(() => api.requests.some((r) => r.method === 'POST' && LEASES.test(r.path)), { timeout: 10_000, interval: 20 }).toBe(true);
  await expect.poll(() => readiness(app.url), { timeout: 10_000, interval: 20 }).toBe(200);
  api.failNext(1_000_000, { method: 'POST', path: LEASES, code: 500 });
  const wave = Array.from({ length: 300 }, (_, i) => ({ labels: { alertname: 'SpotInstanceTerminating', instance_id: `i-${i}` }, startsAt: '2026-11-29T10:00:00Z' }));
  const startedAt = Date.now();
  expect(await app.post('/api/v2/alerts', wave)).toMatchObject({ status: 503, json: { errorType: 'state_unavailable' } });
  // Every run has heard its claim failed.
  await expect.poll(() => app.engine.flowStatus()[0]!.running, { timeout: 10_000, interval: 20 }).toBe(0);
  // One line of each kind, and one more every 10 s of the wave.
  const most = 1 + Math.floor((Date.now() - startedAt) / 10_000);
  const count = (msg: string): number => app.logs.filter((l) => l['msg'] === msg).length;
  expect(count('could not claim the group in the shared run-state store; the event is refused so that it is sent again')).toBeGreaterThanOrEqual(1);
  expect(count('could not claim the group in the shared run-state store; the event is refused so that it is sent again')).toBeLessThanOrEqual(most);
  expect(count('run not started: the run-state store could not be reached or could not record it; the sender is refused and sends the event again')).toBeGreaterThanOrEqual(1);
  expect(count('run not started: the run-state store could not be reached or could not record it; the sender is refused and sends the event again')).toBeLessThanOrEqual(most);
});
