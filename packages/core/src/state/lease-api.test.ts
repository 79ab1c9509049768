import { systemClock } from '@hollowtrees/grpcplugin';
import { manualClock } from '@hollowtrees/grpcplugin/testing';
import { startKubeApiServer, type KubeApiServer } from '@hollowtrees/testkit';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { kubeLeaseApi, LeaseRefused, LeaseUnreachable, loadStoreKubeConfig, type LeaseApi } from './lease-api.js';
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
  api = kubeLeaseApi(loadStoreKubeConfig(server.kubeConfigFileText()), { namespace: NAMESPACE, timeoutMs: 5_000, maxInFlight: 32, metrics: new StoreMetrics(new Registry()), clock: systemClock });
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
    const slow = kubeLeaseApi(loadStoreKubeConfig(server.kubeConfigFileText()), { namespace: NAMESPACE, timeoutMs: 1_000, maxInFlight: 32, metrics, clock });
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

describe('kubeLeaseApi calls in flight', () => {
  const lease = (name: string) => ({ metadata: { name, labels: { ...LEASE_LABELS } }, spec: {} });

  it('keeps at most maxInFlight calls in flight: a burst of claims meets an API server that answers 429 past 10 at once (API Priority and Fairness) with none refused', async () => {
    const limited = await startKubeApiServer({ maxInFlight: 10, latencyMs: 5 });
    try {
      const gated = kubeLeaseApi(loadStoreKubeConfig(limited.kubeConfigFileText()), { namespace: NAMESPACE, timeoutMs: 10_000, maxInFlight: 8, metrics: new StoreMetrics(new Registry()), clock: systemClock });
      const created = await Promise.all(Array.from({ length: 200 }, (_, i) => gated.create(lease(`burst-${i}`))));
      expect(created).toHaveLength(200);
      expect(limited.requests.filter((r) => r.code === 429)).toEqual([]);
      expect(limited.cluster.leases.all()).toHaveLength(200);
    } finally {
      await limited.close();
    }
  });

  it('sends a call the API server throttled (429) again after its Retry-After, within the call\'s time; still throttled when that runs out, it fails as a 429', async () => {
    const clock = manualClock();
    const throttledApi = kubeLeaseApi(loadStoreKubeConfig(server.kubeConfigFileText()), { namespace: NAMESPACE, timeoutMs: 2_500, maxInFlight: 4, metrics: new StoreMetrics(new Registry()), clock });
    server.failNext(1, { code: 429, method: 'POST' });
    const created = throttledApi.create(lease('throttled-once'));
    // The call's deadline, and the 1 s a 429 with no Retry-After asks for.
    await expect.poll(() => clock.sleeping, { timeout: 5_000, interval: 5 }).toBe(2);
    clock.advance(1_000);
    expect((await created).metadata?.name).toBe('throttled-once');
    expect(server.requests.filter((r) => r.method === 'POST').map((r) => r.code)).toEqual([429, 201]);

    server.failNext(3, { code: 429, method: 'POST' });
    const refused = throttledApi.create(lease('throttled-always')).catch((e: unknown) => e);
    for (let i = 0; i < 2; i++) {
      await expect.poll(() => clock.sleeping, { timeout: 5_000, interval: 5 }).toBe(2);
      clock.advance(1_000);
    }
    await expect.poll(() => clock.sleeping, { timeout: 5_000, interval: 5 }).toBe(2);
    clock.advance(500);
    const err = await refused;
    expect(err).toBeInstanceOf(LeaseRefused);
    expect(err).toMatchObject({ code: 429, message: "injected fault (HTTP 429) (still throttled when the call's 2500 ms ran out)" });
    expect(server.cluster.leases.all().some((l) => l.metadata?.name === 'throttled-always')).toBe(false);
  });

  it('serves a write of a Lease the replica holds (a renewal) before the claims that wait for a slot: a wave of claims does not hold a run\'s renewal back past its Lease', async () => {
    const narrow = kubeLeaseApi(loadStoreKubeConfig(server.kubeConfigFileText()), { namespace: NAMESPACE, timeoutMs: 5_000, maxInFlight: 1, metrics: new StoreMetrics(new Registry()), clock: systemClock });
    const held = await narrow.read('hollowtrees-0');
    let answer = (): void => {};
    server.failNext(1, { effect: 'delay', method: 'POST', until: new Promise<void>((resolve) => (answer = resolve)) });
    const first = narrow.create(lease('first'));
    await expect.poll(() => server.inFlight, { timeout: 5_000, interval: 5 }).toBe(1);
    const claims = ['c1', 'c2', 'c3'].map((name) => narrow.create(lease(name)));
    const renewal = narrow.replace(held, { held: true });
    answer();
    await Promise.all([first, ...claims, renewal]);
    const sent = server.requests.filter((r) => r.method === 'POST' || r.method === 'PUT').map((r) => r.method);
    expect(sent).toEqual(['POST', 'PUT', 'POST', 'POST', 'POST']);
  });

  it('sends the record of a run\'s end after the claims waiting for a slot, though it asked first: a wave\'s records do not hold its claims back', async () => {
    const narrow = kubeLeaseApi(loadStoreKubeConfig(server.kubeConfigFileText()), { namespace: NAMESPACE, timeoutMs: 5_000, maxInFlight: 1, metrics: new StoreMetrics(new Registry()), clock: systemClock });
    let answer = (): void => {};
    server.failNext(1, { effect: 'delay', method: 'POST', until: new Promise<void>((resolve) => (answer = resolve)) });
    const first = narrow.create(lease('first'));
    await expect.poll(() => server.inFlight, { timeout: 5_000, interval: 5 }).toBe(1);
    const ended = narrow.create(lease('ended'), { record: true });
    const claims = ['c1', 'c2'].map((name) => narrow.create(lease(name)));
    answer();
    await Promise.all([first, ended, ...claims]);
    const created = server.cluster.leases.all().map((l) => l.metadata?.name).filter((name) => !name?.startsWith('hollowtrees-'));
    expect(created).toEqual(['first', 'c1', 'c2', 'ended']);
  });

  it('does not send a call that waited for a slot past its deadline, says so, and frees the slot of a call never answered at its deadline', async () => {
    const clock = manualClock();
    const narrow = kubeLeaseApi(loadStoreKubeConfig(server.kubeConfigFileText()), { namespace: NAMESPACE, timeoutMs: 1_000, maxInFlight: 1, metrics: new StoreMetrics(new Registry()), clock });
    let answer = (): void => {};
    server.failNext(1, { effect: 'delay', method: 'POST', until: new Promise<void>((resolve) => (answer = resolve)) });
    const unanswered = narrow.create(lease('unanswered')).catch((e: unknown) => e);
    const waiting = narrow.create(lease('waiting')).catch((e: unknown) => e);
    await expect.poll(() => server.inFlight, { timeout: 5_000, interval: 5 }).toBe(1);
    clock.advance(1_000);
    expect(await unanswered).toMatchObject({ name: 'LeaseUnreachable', message: 'no answer from the API server within 1000 ms' });
    expect(await waiting).toMatchObject({ name: 'LeaseUnreachable', message: "not sent within 1000 ms: the replica's Lease calls in flight were at their limit (state.kubernetes.maxInFlight: 1)" });
    // The unanswered call's slot is free though its request is still open.
    expect((await narrow.read('hollowtrees-0')).metadata?.name).toBe('hollowtrees-0');
    answer();
    await expect.poll(() => server.inFlight, { timeout: 5_000, interval: 5 }).toBe(0);
    expect(server.requests.filter((r) => r.method === 'POST').length).toBe(1);
    expect(server.cluster.leases.all().some((l) => l.metadata?.name === 'waiting')).toBe(false);
  });
});
