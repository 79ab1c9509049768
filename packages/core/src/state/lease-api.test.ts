import { systemClock } from '@hollowtrees/grpcplugin';
import { manualClock } from '@hollowtrees/grpcplugin/testing';
import { startKubeApiServer, type KubeApiServer } from '@hollowtrees/testkit';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { kubeLeaseApi, LeaseUnreachable, loadStoreKubeConfig, type LeaseApi } from './lease-api.js';
import { LEASE_LABELS, LEASE_SELECTOR } from './lease-record.js';
import { StoreMetrics } from './store-metrics.js';

const NAMESPACE = 'ops';
/** One more than a page of the list holds: two pages. */
const LEASES = 501;
const LIST_PATH = /\/namespaces\/ops\/leases$/;

let server: KubeApiServer;
let api: LeaseApi;
beforeEach(async () => {
  server = await startKubeApiServer();
  api = kubeLeaseApi(loadStoreKubeConfig(server.kubeConfigFileText()), { namespace: NAMESPACE, timeoutMs: 5_000, metrics: new StoreMetrics(new Registry()), clock: systemClock });
  for (let i = 0; i < LEASES; i++) server.cluster.leases.create(NAMESPACE, { metadata: { name: `hollowtrees-${i}`, labels: { ...LEASE_LABELS } }, spec: {} });
});
afterEach(() => server.close());

const lists = (): number => server.requests.filter((r) => r.method === 'GET' && LIST_PATH.test(r.path)).length;

describe('kubeLeaseApi list', () => {
  it('reads the list again from its first page when its continue token expired (410 Gone): every Lease, once', async () => {
    server.failNext(1, { code: 410, query: /(^|&)continue=/ });
    const names = (await api.list(LEASE_SELECTOR)).map((l) => l.metadata?.name);
    expect(names).toHaveLength(LEASES);
    expect(new Set(names).size).toBe(LEASES);
    expect(lists()).toBe(4);
  });

  it('fails, naming the list and the token, when a page hands out a continue token an earlier one gave, and reads no further', async () => {
    server.failNext(5, { effect: 'repeat-continue', path: LIST_PATH });
    const err = await api.list(LEASE_SELECTOR).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseUnreachable);
    expect((err as Error).message).toMatch(/^the Lease list of namespace ops: page 2 gave a continue token an earlier page gave \(.+\): the listing would never end$/);
    expect(lists()).toBe(2);
  });

  it('gives each page its own timeout: a list of many pages that takes longer than one call may, each page answered in time, is read whole', async () => {
    for (let i = LEASES; i < 2 * LEASES - 1; i++) server.cluster.leases.create(NAMESPACE, { metadata: { name: `hollowtrees-${i}`, labels: { ...LEASE_LABELS } }, spec: {} });
    const clock = manualClock();
    const metrics = new StoreMetrics(new Registry());
    const slow = kubeLeaseApi(loadStoreKubeConfig(server.kubeConfigFileText()), { namespace: NAMESPACE, timeoutMs: 1_000, metrics, clock });
    const listCalls = async (): Promise<number> => (await metrics.calls.get()).values.find((v) => v.labels.operation === 'list' && v.labels.result === 'ok')?.value ?? 0;
    // Three pages, each held by the stand-in until the test lets it go.
    const pages = [0, 1, 2].map(() => {
      let release!: () => void;
      return { until: new Promise<void>((resolve) => (release = resolve)), release: () => release() };
    });
    for (const { until } of pages) server.failNext(1, { effect: 'delay', path: LIST_PATH, until });
    const listed = slow.list(LEASE_SELECTOR);
    for (const [answered, { release }] of pages.entries()) {
      // The pages before it answered, this page's call waits for its answer, its timeout running.
      await expect.poll(async () => [await listCalls(), clock.sleeping], { timeout: 5_000, interval: 5 }).toEqual([answered, 1]);
      // 600 ms a page: within the 1 s one call is given, though the list takes 1.8 s.
      clock.advance(600);
      release();
    }
    expect(await listed).toHaveLength(2 * LEASES - 1);
  });
});
