import { Code, PluginClient, PluginError, serve, type CloudEvent, type HandleContext, type HandleResult } from '@hollowtrees/grpcplugin';
import { jsonLogger } from '@hollowtrees/grpcplugin';
import { rejectionOf, startKubeApiServer, type KubeApiServer, type KubeNode, type KubePod } from '@hollowtrees/testkit';
import { KubeConfig } from '@kubernetes/client-node';
import { jumpableClock, manualClock, recordingLogger, type JumpableClock } from '@hollowtrees/grpcplugin/testing';
import { describe, expect, it, vi } from 'vitest';
import { createDrainHandler, type DrainHandler } from './drain-handler.js';
import { DrainIncompleteError } from './drain-incomplete-error.js';
import type { DrainOptions } from './options.js';
import { cleanupsAfterEach, held } from './test-support/kube.js';

const cleanups = cleanupsAfterEach();

const ZONE = 'eu-west-1a';
const TYPE = 'm5.large';
const POOL = ['pool-1', 'pool-2', 'pool-3', 'pool-4', 'pool-5', 'pool-6'];
/** Nodes of other pools, and on-demand nodes of the pool's zone and type (EKS, Karpenter): no part of the spot pool. */
const OTHERS = ['other-type', 'other-zone', 'on-demand-eks', 'on-demand-karpenter'];
const MARK = 'hollowtrees.io/spot-termination';
const POOL_CORDON = 'hollowtrees.io/pool-cordon';

function node(name: string, zone: string, type: string, labels: Record<string, string> = {}): KubeNode {
  return {
    metadata: { name, labels: { 'topology.kubernetes.io/zone': zone, 'node.kubernetes.io/instance-type': type, ...labels } },
    spec: { providerID: `aws:///${zone}/i-${name.replace(/-/g, '')}` },
  };
}

const owner = (kind: string, name: string) => [{ apiVersion: 'apps/v1', kind, name, uid: `${kind}-${name}`, controller: true }];

function pod(name: string, nodeName: string, extra: { labels?: Record<string, string>; kind?: string; grace?: number } = {}): KubePod {
  return {
    metadata: { name, namespace: 'apps', labels: extra.labels, ownerReferences: owner(extra.kind ?? 'ReplicaSet', name.replace(/-[^-]+$/, '')) },
    spec: { nodeName, terminationGracePeriodSeconds: extra.grace ?? 10 },
  };
}

/**
 * The stand-in with a pool of six nodes (eu-west-1a, m5.large) and two nodes of
 * other pools (same zone other type, same type other zone). Each pool node runs
 * a DaemonSet pod, two api pods and a web pod under one budget (maxUnavailable 1),
 * pool-1 a second web pod (unless told not to); each other node runs two pods.
 */
async function startCluster({ secondWebPod = true } = {}): Promise<KubeApiServer> {
  const api = await startKubeApiServer({ msPerGraceSecond: 5 });
  cleanups.push(() => api.close());
  // Two pool nodes say they are spot capacity, as EKS and Karpenter label them; the others say nothing (self-managed).
  const spot: Record<string, Record<string, string>> = { 'pool-5': { 'eks.amazonaws.com/capacityType': 'SPOT' }, 'pool-6': { 'karpenter.sh/capacity-type': 'spot' } };
  for (const name of POOL) {
    api.cluster.addNode(node(name, ZONE, TYPE, spot[name]));
    api.cluster.addPod(pod(`proxy-${name}`, name, { kind: 'DaemonSet' }));
    api.cluster.addPod(pod(`api-${name}a`, name));
    api.cluster.addPod(pod(`api-${name}b`, name));
    api.cluster.addPod(pod(`web-${name}`, name, { labels: { app: 'web' }, grace: 20 }));
  }
  // A second web pod on pool-1: its two evictions go out together, so the budget refuses one of them.
  if (secondWebPod) api.cluster.addPod(pod('web-pool-1b', 'pool-1', { labels: { app: 'web' }, grace: 20 }));
  api.cluster.addNode(node('other-type', ZONE, 'c5.large'));
  api.cluster.addNode(node('other-zone', 'eu-west-1b', TYPE));
  api.cluster.addNode(node('on-demand-eks', ZONE, TYPE, { 'eks.amazonaws.com/capacityType': 'ON_DEMAND' }));
  api.cluster.addNode(node('on-demand-karpenter', ZONE, TYPE, { 'karpenter.sh/capacity-type': 'on-demand' }));
  for (const name of OTHERS) for (const p of ['x', 'y']) api.cluster.addPod(pod(`svc-${name}-${p}`, name));
  api.cluster.addPodDisruptionBudget({ metadata: { name: 'web', namespace: 'apps' }, spec: { selector: { matchLabels: { app: 'web' } }, maxUnavailable: 1 } });
  return api;
}

const silent = jsonLogger({ service: 'test', level: 'silent' });

function handlerFor(api: KubeApiServer, options: DrainOptions = {}): DrainHandler {
  const kc = new KubeConfig();
  kc.loadFromOptions(api.kubeConfigOptions());
  const handler = createDrainHandler(kc, { backoff: () => 10, logger: silent, ...options });
  cleanups.push(() => handler.close());
  return handler;
}

const TIME = Date.parse('2026-11-30T02:00:00Z');

function surge(labels: Record<string, string> = { availability_zone: ZONE, instance_type: TYPE }, time = TIME, resolved = false): CloudEvent {
  return {
    id: `surge-${time}${resolved ? '-resolved' : ''}`,
    source: 'urn:hollowtrees:spot-price',
    specversion: '1.0',
    type: `aws.ec2.spot.price-surge${resolved ? '.resolved' : ''}`,
    time: new Date(time).toISOString(),
    data: { labels: { region: 'eu-west-1', product_description: 'Linux/UNIX', ...labels } },
  };
}
const resolution = (time: number, labels?: Record<string, string>): CloudEvent => surge(labels, time, true);

const context = (config: Record<string, string>, timeoutMs = 30_000): HandleContext => ({
  flow: 'spot-price-surge',
  attempt: 1,
  deadline: new Date(Date.now() + timeoutMs),
  signal: new AbortController().signal,
  config,
});

/** The writes to the cluster's nodes and pods: all but those of the pools' resolution markers (Leases). */
const nodeWrites = (api: KubeApiServer) => api.requests.filter((r) => r.method !== 'GET' && !r.path.startsWith('/apis/coordination.k8s.io/'));
/** The listings of a pool's nodes (by label selector). */
const poolListings = (api: KubeApiServer) => api.requests.filter((r) => r.method === 'GET' && r.path === '/api/v1/nodes' && r.query.labelSelector !== undefined);
const patchesOf = (api: KubeApiServer, name: string) => api.requests.filter((r) => r.method === 'PATCH' && r.path === `/api/v1/nodes/${name}`);
const evictionsOn = (api: KubeApiServer, name: string) => api.cluster.evictions().filter((e) => e.node === name);
const rejection = (p: Promise<unknown>): Promise<PluginError> => rejectionOf(p, PluginError);

/** Per node, from the stand-in's side: from its first eviction call until the last of its evicted pods was gone. */
function drainWindows(api: KubeApiServer): Array<{ node: string; from: number; to: number }> {
  const removals = api.cluster.removals();
  return POOL.flatMap((name) => {
    const evictions = evictionsOn(api, name);
    if (evictions.length === 0) return [];
    const evicted = new Set(evictions.filter((e) => e.code === 201).map((e) => e.name));
    const gone = removals.filter((r) => r.node === name && evicted.has(r.name)).map((r) => r.atMs);
    return [{ node: name, from: Math.min(...evictions.map((e) => e.atMs)), to: Math.max(...gone, ...evictions.map((e) => e.atMs)) }];
  });
}

/** The most windows open at one moment. */
function mostAtOnce(windows: ReadonlyArray<{ from: number; to: number }>): number {
  return Math.max(0, ...windows.map((w) => windows.filter((o) => o.from <= w.from && w.from <= o.to).length));
}

const cordoned = (api: KubeApiServer, name: string) => {
  const n = api.cluster.node(name)!;
  return { unschedulable: n.spec?.unschedulable === true, tainted: (n.spec?.taints ?? []).some((t) => t.key === MARK), marked: n.metadata.labels?.[MARK] === 'true' };
};

/** The node's pool-cordon record (its annotation, read), or undefined without one. */
const poolRecord = (api: KubeApiServer, name: string): Record<string, unknown> | undefined => {
  const text = api.cluster.node(name)!.metadata.annotations?.[POOL_CORDON];
  return text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>);
};
const recordedSurgeAt = (api: KubeApiServer, name: string): unknown => poolRecord(api, name)?.surgeAt;

/** A node cordoned by a pool drain (unschedulable, tainted and labelled), and one left as it was before. */
const CORDONED = { unschedulable: true, tainted: true, marked: true };
const UNCORDONED = { unschedulable: false, tainted: false, marked: false };
/** Every node of the pool is as `state` says. */
const expectPool = (api: KubeApiServer, state: ReturnType<typeof cordoned>): void => {
  for (const name of POOL) expect(cordoned(api, name)).toEqual(state);
};

/**
 * The late resolution of the surge at TIME + 1m leaves the pool cordoned (skipped: a newer surge holds it); the
 * resolution of the newer surge, at TIME + 3m, undoes all six cordons.
 */
async function onlyTheNewerResolutionUncordons(api: KubeApiServer, handler: ReturnType<typeof handlerFor>): Promise<void> {
  expect(await handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' }))).toMatchObject({ status: 'skipped' });
  expectPool(api, CORDONED);
  expect(await handler.handle(resolution(TIME + 180_000), context({ mode: 'pool' }))).toMatchObject({ attributes: { nodes_uncordoned: '6' } });
  expectPool(api, UNCORDONED);
}

describe('pool mode', () => {
  it('cordons the whole pool first, then drains it at most maxUnavailable nodes at a time, budgets respected, other pools untouched', async () => {
    const api = await startCluster();
    // The flow's maxUnavailable wins over the plugin-wide default.
    const handler = handlerFor(api, { poolMaxUnavailable: 6 });

    const result = await handler.handle(surge(), context({ mode: 'pool', maxUnavailable: '2' }));

    expect(result.status).toBeUndefined();
    expect(result.attributes).toMatchObject({ pool: `${ZONE}/${TYPE}`, nodes_selected: '6', nodes_drained: '6', nodes_left: '0', stopped_early: 'false' });
    expect(Number(result.attributes?.duration_ms)).toBeGreaterThan(0);
    // Every pool node cordoned (one patch each), and every cordon answered before the first eviction reached the API server.
    for (const name of POOL) {
      expect(patchesOf(api, name)).toHaveLength(1);
      expect(cordoned(api, name)).toEqual(CORDONED);
    }
    const lastCordon = Math.max(...POOL.map((name) => patchesOf(api, name)[0]!.at));
    expect(lastCordon).toBeLessThan(Math.min(...api.cluster.evictions().map((e) => e.atMs)));
    // Never more than two nodes with evictions in progress (or their pods still going) at once.
    const windows = drainWindows(api);
    expect(windows.map((w) => w.node).sort()).toEqual(POOL);
    expect(mostAtOnce(windows)).toBeLessThanOrEqual(2);
    // The budget refused some web evictions, and they were retried until it allowed each; DaemonSet pods stayed.
    const evictions = api.cluster.evictions();
    expect(evictions.some((e) => e.code === 429 && e.name.startsWith('web-'))).toBe(true);
    expect(evictions.filter((e) => e.code === 201)).toHaveLength(19);
    for (const name of POOL) expect(api.cluster.pods(name).map((p) => p.metadata.name)).toEqual([`proxy-${name}`]);
    // The other pools: not cordoned, nothing evicted; their own pods are still there.
    for (const name of OTHERS) {
      expect(patchesOf(api, name)).toHaveLength(0);
      expect(evictionsOn(api, name)).toHaveLength(0);
      expect(api.cluster.pods(name).map((p) => p.metadata.name)).toEqual(expect.arrayContaining([`svc-${name}-x`, `svc-${name}-y`]));
    }
  });

  it('starts each node drain no sooner than minInterval after the one before', async () => {
    // No budget refusal: its retry would wait on the manual clock.
    const api = await startCluster({ secondWebPod: false });
    const clock = manualClock();
    // The plugin-wide default (--pool-min-interval), as the flow sets none.
    const handler = handlerFor(api, { clock, poolMinIntervalMs: 30_000 });
    const gone = (name: string): boolean => api.cluster.pods(name).length === 1;

    const draining = handler.handle(surge(), context({ mode: 'pool', maxUnavailable: '6' }));
    for (const [i, name] of POOL.entries()) {
      // Started (and so the pool is waiting out the interval on the clock) and done, before the next may start.
      await vi.waitFor(() => expect(gone(name)).toBe(true), { timeout: 10_000, interval: 10 });
      const next = POOL[i + 1];
      if (!next) break;
      expect(evictionsOn(api, next)).toHaveLength(0);
      clock.advance(29_999);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(evictionsOn(api, next)).toHaveLength(0);
      clock.advance(1);
    }
    expect((await draining).attributes).toMatchObject({ nodes_drained: '6', nodes_left: '0' });
  });

  it('keeps minInterval across calls: a retry after a deadline waits out the interval since the last node it started', async () => {
    const api = await startCluster({ secondWebPod: false });
    const clock = manualClock();
    const handler = handlerFor(api, { clock, poolMinIntervalMs: 30_000 });
    const gone = (name: string): boolean => api.cluster.pods(name).length === 1;
    const until = (ms: number, config: Record<string, string>): HandleContext => ({ ...context(config), deadline: new Date(clock.now() + ms) });

    const first = rejection(handler.handle(surge(), until(45_000, { mode: 'pool' })));
    await vi.waitFor(() => expect(gone('pool-1')).toBe(true), { timeout: 10_000, interval: 10 });
    clock.advance(30_000);
    await vi.waitFor(() => expect(gone('pool-2')).toBe(true), { timeout: 10_000, interval: 10 });
    clock.advance(15_000);
    expect(((await first) as DrainIncompleteError).attributes).toMatchObject({ nodes_drained: '2', nodes_left: '4' });

    // The retry comes 15 s after pool-2 started: pool-3 waits the other 15 s.
    const retry = handler.handle(surge(), until(120_000, { mode: 'pool' }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(evictionsOn(api, 'pool-3')).toHaveLength(0);
    clock.advance(15_000);
    await vi.waitFor(() => expect(gone('pool-3')).toBe(true), { timeout: 10_000, interval: 10 });
    await handler.handle(resolution(TIME + 60_000), until(10_000, { mode: 'pool' }));
    expect((await retry).attributes).toMatchObject({ nodes_drained: '3', nodes_left: '3', stopped_early: 'true' });
  });

  it('a resolution mid-way stops the drain: no node starts after it, and the nodes it cordoned but did not drain are uncordoned', async () => {
    const api = await startCluster();
    // pool-2's database may never lose a pod, so its drain holds there until stopped.
    api.cluster.addPod(pod('db-0', 'pool-2', { labels: { app: 'db' }, kind: 'StatefulSet' }));
    api.cluster.addPodDisruptionBudget({ metadata: { name: 'db', namespace: 'apps' }, spec: { selector: { matchLabels: { app: 'db' } }, minAvailable: 1 } });
    // pool-5 was cordoned by someone else before; pool-6 by an earlier drain of this plugin: neither is this drain's to undo.
    api.cluster.patchNode('pool-5', 'application/merge-patch+json', { spec: { unschedulable: true } });
    api.cluster.patchNode('pool-6', 'application/merge-patch+json', {
      metadata: { labels: { [MARK]: 'true' } },
      spec: { unschedulable: true, taints: [{ key: MARK, value: 'true', effect: 'NoSchedule' }] },
    });
    const handler = handlerFor(api);

    const draining = handler.handle(surge(), context({ mode: 'pool' }));
    await vi.waitFor(() => expect(evictionsOn(api, 'pool-2').some((e) => e.name === 'db-0' && e.code === 429)).toBe(true), { timeout: 10_000, interval: 20 });
    const stop = await handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    const result = await draining;

    const expected = { pool: `${ZONE}/${TYPE}`, nodes_selected: '6', nodes_drained: '1', nodes_left: '5', stopped_early: 'true' };
    expect(result.status).toBeUndefined();
    expect(result.attributes).toMatchObject(expected);
    expect(stop.status).toBeUndefined();
    expect(stop.message).toMatch(/^stopped the drain of pool eu-west-1a\/m5.large: .*uncordoned 4 \(pool-2, pool-3, pool-4, pool-5\)/);
    expect(stop.attributes).toMatchObject(expected);
    // No node after pool-2 was touched by an eviction; pool-2 kept its database.
    for (const name of ['pool-3', 'pool-4', 'pool-5', 'pool-6']) expect(evictionsOn(api, name)).toHaveLength(0);
    expect(api.cluster.pods('pool-2').map((p) => p.metadata.name)).toContain('db-0');
    // Drained: stays cordoned. Cordoned by this drain and not drained: uncordoned.
    expect(cordoned(api, 'pool-1')).toEqual(CORDONED);
    for (const name of ['pool-2', 'pool-3', 'pool-4']) expect(cordoned(api, name)).toEqual(UNCORDONED);
    // Unschedulable before: the marks go, the cordon someone else made stays. Cordoned before by the plugin: untouched.
    expect(cordoned(api, 'pool-5')).toEqual({ unschedulable: true, tainted: false, marked: false });
    expect(cordoned(api, 'pool-6')).toEqual(CORDONED);

    // pool-2's drain was stopped, not failed: no DrainFailed Warning on it.
    await handler.eventsRecorded();
    expect(api.cluster.events().filter((e) => e.involvedObject.name === 'pool-2').map((e) => e.reason)).toEqual(['SpotInterruption']);

    // A second resolution finds nothing in progress.
    const again = await handler.handle(resolution(TIME + 120_000), context({ mode: 'pool' }));
    expect(again).toMatchObject({ status: 'skipped', message: 'no pool drain in progress for pool eu-west-1a/m5.large' });
  });

  it('a resolution while the drain is still listing the pool stops it before any cordon', async () => {
    const api = await startCluster();
    const clock = manualClock();
    const handler = handlerFor(api, { clock });
    const long = (config: Record<string, string>): HandleContext => ({ ...context(config), deadline: new Date(clock.now() + 600_000) });
    const listed = (code: number): boolean => poolListings(api).some((r) => r.code === code);
    // The listing fails once, and its retry waits on the manual clock.
    api.failNext(1, { method: 'GET', path: /^\/api\/v1\/nodes$/ });

    const draining = handler.handle(surge(), long({ mode: 'pool' }));
    await vi.waitFor(() => expect(listed(500)).toBe(true), { timeout: 10_000, interval: 10 });
    const stopping = handler.handle(resolution(TIME + 60_000), long({ mode: 'pool' }));
    await vi.waitFor(() => {
      clock.advance(1_000);
      expect(listed(200)).toBe(true);
    }, { timeout: 10_000, interval: 10 });

    const [result, stop] = await Promise.all([draining, stopping]);
    expect(result.attributes).toMatchObject({ nodes_selected: '6', nodes_drained: '0', nodes_left: '6', stopped_early: 'true' });
    expect(stop.attributes).toMatchObject({ stopped_early: 'true' });
    expect(nodeWrites(api)).toHaveLength(0);
  });

  it('a resolution that comes before the drain starts makes every older surge of the pool drain nothing', async () => {
    const api = await startCluster();
    const handler = handlerFor(api);

    expect(await handler.handle(resolution(TIME), context({ mode: 'pool' }))).toEqual({
      status: 'skipped',
      message: 'no pool drain in progress for pool eu-west-1a/m5.large',
      attributes: { pool: 'eu-west-1a/m5.large' },
    });
    // Older than the resolution, or the same alert occurrence (a Prometheus resolution keeps the alert's startsAt as its time).
    for (const time of [TIME - 60_000, TIME]) {
      const late = await handler.handle(surge(undefined, time), context({ mode: 'pool' }));
      expect(late).toMatchObject({ status: 'skipped', attributes: { pool: `${ZONE}/${TYPE}`, nodes_drained: '0', stopped_early: 'true' } });
      expect(late.message).toMatch(/resolved at 2026-11-30T02:00:00.000Z: nothing drained/);
    }
    expect(nodeWrites(api)).toHaveLength(0);
    // Another pool's resolution does not count for this one.
    await handler.handle(resolution(TIME + 60_000, { availability_zone: 'eu-west-1b', instance_type: TYPE }), context({ mode: 'pool' }));
    // A new surge, after the resolution, drains.
    const next = await handler.handle(surge(undefined, TIME + 1_000), context({ mode: 'pool', maxUnavailable: '3' }));
    expect(next.attributes).toMatchObject({ nodes_drained: '6', stopped_early: 'false' });
  });

  it('two surge calls at once share one drain; a call after it finds the pool drained, also through a node the event names', async () => {
    const api = await startCluster();
    const handler = handlerFor(api);

    const [first, second] = await Promise.all([
      handler.handle(surge(), context({ mode: 'pool', maxUnavailable: '3' })),
      handler.handle({ ...surge(), id: 'rebalance-1', type: 'hollowtrees.node.aws.rebalance-recommendation' }, context({ mode: 'pool', maxUnavailable: '3' })),
    ]);
    expect(second).toEqual(first);
    expect(first.attributes).toMatchObject({ nodes_selected: '6', nodes_drained: '6' });
    // One listing of the pool, one cordon per node, one accepted eviction per pod.
    expect(poolListings(api)).toHaveLength(1);
    for (const name of POOL) expect(patchesOf(api, name)).toHaveLength(1);
    const accepted = api.cluster.evictions().filter((e) => e.code === 201).map((e) => e.name);
    expect(new Set(accepted).size).toBe(accepted.length);
    expect(accepted).toHaveLength(19);

    // A rebalance recommendation from SQS names only the instance: its node's labels give the pool.
    await handler.eventsRecorded();
    const writes = api.requests.filter((r) => r.method !== 'GET').length;
    const after = await handler.handle({ ...surge({ instance_id: 'i-pool4' }), type: 'aws.ec2.spot.rebalance-recommendation' }, context({ mode: 'pool' }));
    expect(after).toMatchObject({ status: 'skipped', message: 'pool eu-west-1a/m5.large is already cordoned and drained', attributes: { nodes_selected: '6', nodes_drained: '6', nodes_left: '0' } });
    expect(api.requests.filter((r) => r.method !== 'GET')).toHaveLength(writes);
  });

  it('a selector in the flow config picks the pool instead of the event labels', async () => {
    const api = await startCluster();
    api.cluster.addNode(node('batch-1', 'eu-west-1c', 'r5.large', { 'node-group': 'batch' }));
    api.cluster.addNode(node('batch-2', 'eu-west-1b', 'r5.large', { 'node-group': 'batch' }));
    api.cluster.addPod(pod('job-batch-1', 'batch-1'));
    const handler = handlerFor(api);

    const result = await handler.handle(surge(), context({ mode: 'pool', selector: 'node-group=batch' }));
    expect(result.attributes).toMatchObject({ pool: 'node-group=batch', nodes_selected: '2', nodes_drained: '2' });
    expect(api.cluster.evictions().map((e) => e.name)).toEqual(['job-batch-1']);
    for (const name of POOL) expect(patchesOf(api, name)).toHaveLength(0);

    const err = await rejection(handler.handle(surge(), context({ mode: 'pool', selector: '=batch' })));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/"selector" "=batch" is refused by the API server/);
  });

  it('answers DEADLINE_EXCEEDED (retryable) with the nodes left when the deadline comes first; they stay cordoned for the retry, and a resolution undoes them', async () => {
    const api = await startCluster();
    // pool-1, the first drained, holds a database that may never lose a pod.
    api.cluster.addPod(pod('db-0', 'pool-1', { labels: { app: 'db' }, kind: 'StatefulSet' }));
    api.cluster.addPodDisruptionBudget({ metadata: { name: 'db', namespace: 'apps' }, spec: { selector: { matchLabels: { app: 'db' } }, minAvailable: 1 } });
    const clock = jumpableClock();
    const handler = handlerFor(api, { replyMarginMs: 200, clock });
    const dbRefusals = (): number => api.cluster.evictions().filter((e) => e.name === 'db-0' && e.code === 429).length;

    const err = await drainUntilDeadline(handler, clock, surge(), api);
    expect(err).toBeInstanceOf(DrainIncompleteError);
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(err.retryable).toBe(true);
    expect((err as DrainIncompleteError).attributes).toMatchObject({ nodes_selected: '6', nodes_drained: '0', nodes_left: '6', stopped_early: 'false' });
    expect(err.message).toMatch(/nodes_left=6 \(pool-1, pool-2, pool-3, pool-4, pool-5, pool-6\)/);
    for (const name of POOL) expect(cordoned(api, name).unschedulable).toBe(true);
    for (const name of POOL.slice(1)) expect(evictionsOn(api, name)).toHaveLength(0);

    // core's retry: a new call finds the nodes cordoned already, and takes the drain up again...
    const before = dbRefusals();
    const retry = handler.handle(surge(), context({ mode: 'pool' }));
    await vi.waitFor(() => expect(dbRefusals()).toBeGreaterThan(before), { timeout: 10_000, interval: 20 });
    // ...and a resolution now undoes the cordons the first call made, though the retry made none.
    await handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    expect((await retry).attributes).toMatchObject({ nodes_drained: '0', nodes_left: '6', stopped_early: 'true' });
    expectPool(api, UNCORDONED);

    // A drain that ran out of time with no retry after it: the resolution alone undoes its cordons.
    const refused = dbRefusals();
    await drainUntilDeadline(handler, clock, surge(undefined, TIME + 120_000), api);
    for (const name of POOL) expect(cordoned(api, name).unschedulable).toBe(true);
    const undo = await handler.handle(resolution(TIME + 180_000), context({ mode: 'pool' }));
    expect(undo).toMatchObject({ attributes: { pool: `${ZONE}/${TYPE}`, nodes_uncordoned: '6' } });
    expect(undo.message).toMatch(/^no pool drain in progress for pool eu-west-1a\/m5.large; uncordoned 6 nodes an earlier drain of the pool left cordoned/);
    expectPool(api, UNCORDONED);
  });

  it("a resolution whose marker cannot be written (the Lease Role missing after an upgrade) still undoes the cordons an earlier drain left, and fails naming the Lease", async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const clock = jumpableClock();
    const handler = handlerFor(api, { replyMarginMs: 200, clock });
    await drainUntilDeadline(handler, clock, surge(), api);
    expectPool(api, CORDONED);

    api.failNext(10, { code: 403, path: /\/leases/ });
    const err = await rejection(handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' })));
    // Before, the refused marker ended the call before any uncordon: the pool stayed cordoned, and core does not retry PERMISSION_DENIED.
    expectPool(api, UNCORDONED);
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.message).toMatch(/recording the resolution of pool eu-west-1a\/m5\.large \(Lease default\/hollowtrees-pool-[0-9a-f]{32}\)/);
    expect(err.message).toMatch(/uncordoned 6 nodes an earlier drain of the pool left cordoned/);
  });

  it('a resolution forgets the nodes an earlier drain left cordoned that the cluster has deleted since (their instances reclaimed), without a warning', async () => {
    const api = await startCluster();
    api.cluster.addPod(pod('db-0', 'pool-1', { labels: { app: 'db' }, kind: 'StatefulSet' }));
    api.cluster.addPodDisruptionBudget({ metadata: { name: 'db', namespace: 'apps' }, spec: { selector: { matchLabels: { app: 'db' } }, minAvailable: 1 } });
    const logger = recordingLogger();
    const clock = jumpableClock();
    const handler = handlerFor(api, { replyMarginMs: 200, logger, clock });
    await drainUntilDeadline(handler, clock, surge(), api);
    for (const name of ['pool-5', 'pool-6']) api.cluster.deleteNode(name);

    const undo = await handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    expect(undo).toMatchObject({ attributes: { nodes_uncordoned: '4' } });
    expect(logger.lines.filter((l) => l.level === 'warn' && l.message.startsWith('could not uncordon'))).toEqual([]);
    // Nothing is left to undo: the next resolution has nothing to say.
    expect(await handler.handle(resolution(TIME + 120_000), context({ mode: 'pool' }))).toMatchObject({ status: 'skipped', message: `no pool drain in progress for pool ${POOL_NAME}` });
  });

  it('after a restart of the plugin, a resolution undoes the cordons an earlier pool drain left, as the nodes record them, and no other', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    // An operator cordoned pool-6 before the surge: that cordon outlives the resolution.
    api.cluster.patchNode('pool-6', 'application/merge-patch+json', { spec: { unschedulable: true } });
    const clock = jumpableClock();
    await drainUntilDeadline(handlerFor(api, { replyMarginMs: 200, clock }), clock, surge(), api);
    expectPool(api, CORDONED);
    const record = (name: string) => poolRecord(api, name) ?? null;
    expect(record('pool-6')).toEqual({ pool: POOL_NAME, surgeAt: new Date(TIME).toISOString(), uid: api.cluster.node('pool-6')!.metadata.uid, wasUnschedulable: true });

    // The plugin restarts: the new process remembers nothing of that drain.
    const after = handlerFor(api, { replyMarginMs: 200 });
    // Meanwhile pool-2 emptied (a drained node stays cordoned), pool-3's instance got its own notice (the per-instance
    // drain takes the node over), and someone rewrote pool-4's record to name another pool.
    for (const p of api.cluster.pods('pool-2').filter((p) => !p.metadata.name.startsWith('proxy-'))) api.cluster.deletePod('apps', p.metadata.name, 0);
    await vi.waitFor(() => expect(api.cluster.pods('pool-2').map((p) => p.metadata.name)).toEqual(['proxy-pool-2']), { timeout: 10_000, interval: 20 });
    const notice: CloudEvent = { ...surge({ node: 'pool-3' }), id: 'notice-pool-3', type: 'aws.ec2.spot-interruption' };
    expect(await after.handle(notice, context({}))).toMatchObject({ attributes: { node: 'pool-3', pods_remaining: '0' } });
    expect(record('pool-3')).toBeNull();
    api.cluster.patchNode('pool-4', 'application/merge-patch+json', { metadata: { annotations: { [POOL_CORDON]: JSON.stringify({ pool: 'elsewhere', uid: api.cluster.node('pool-4')!.metadata.uid, wasUnschedulable: false }) } } });

    const undo = await after.handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    expect(undo).toMatchObject({ attributes: { pool: POOL_NAME, nodes_uncordoned: '3' } });
    expect(undo.message).toMatch(/uncordoned 3 nodes an earlier drain of the pool left cordoned \(pool-1, pool-5, pool-6\)$/);
    for (const name of ['pool-1', 'pool-5']) expect(cordoned(api, name)).toEqual(UNCORDONED);
    expect(cordoned(api, 'pool-6')).toEqual({ unschedulable: true, tainted: false, marked: false });
    for (const name of ['pool-2', 'pool-3', 'pool-4']) expect(cordoned(api, name)).toEqual(CORDONED);
    for (const name of ['pool-1', 'pool-5', 'pool-6']) expect(record(name)).toBeNull();
  });

  it('after a restart of the plugin, a drain stopped by a resolution undoes the cordons it found an earlier drain of the pool made', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const clock = jumpableClock();
    await drainUntilDeadline(handlerFor(api, { replyMarginMs: 200, clock }), clock, surge(), api);
    const after = handlerFor(api, { replyMarginMs: 200 });
    const before = dbRefusals(api);
    const draining = after.handle(surge(undefined, TIME + 60_000), context({ mode: 'pool' }));
    await vi.waitFor(() => expect(dbRefusals(api)).toBeGreaterThan(before), { timeout: 10_000, interval: 20 });
    await after.handle(resolution(TIME + 120_000), context({ mode: 'pool' }));
    expect((await draining).message).toMatch(/uncordoned 6 \(pool-1, pool-2, pool-3, pool-4, pool-5, pool-6\)$/);
    expectPool(api, UNCORDONED);
  });

  it('after a restart, a drain stopped by a resolution leaves cordoned a node it found cordoned and emptied by the earlier drain', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const clock = jumpableClock();
    await drainUntilDeadline(handlerFor(api, { replyMarginMs: 200, clock }), clock, surge(), api);
    // pool-2 emptied meanwhile (a drained node stays cordoned); the restarted plugin's drain has not reached it when it is stopped.
    for (const p of api.cluster.pods('pool-2').filter((p) => !p.metadata.name.startsWith('proxy-'))) api.cluster.deletePod('apps', p.metadata.name, 0);
    await vi.waitFor(() => expect(api.cluster.pods('pool-2').map((p) => p.metadata.name)).toEqual(['proxy-pool-2']), { timeout: 10_000, interval: 20 });
    const after = handlerFor(api, { replyMarginMs: 200 });
    const before = dbRefusals(api);
    const draining = after.handle(surge(undefined, TIME + 60_000), context({ mode: 'pool' }));
    await vi.waitFor(() => expect(dbRefusals(api)).toBeGreaterThan(before), { timeout: 10_000, interval: 20 });
    await after.handle(resolution(TIME + 120_000), context({ mode: 'pool' }));
    expect((await draining).message).toMatch(/uncordoned 5 \(pool-1, pool-3, pool-4, pool-5, pool-6\)$/);
    expect(cordoned(api, 'pool-2')).toEqual(CORDONED);
  });

  it('a late resolution of an older surge leaves the cordons of a newer surge of the pool, in this process and after a restart', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const clock = jumpableClock();
    const before = handlerFor(api, { replyMarginMs: 200, clock });
    // The surge at TIME + 2m runs out of time: its nodes stay cordoned until its own resolution.
    await drainUntilDeadline(before, clock, surge(undefined, TIME + 120_000), api);
    // The resolution of an earlier surge of the pool (the price fell back at TIME + 1m, then surged again) comes late.
    const stale = await before.handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    expect(stale).toMatchObject({ status: 'skipped', attributes: { pool: POOL_NAME } });
    expect(stale.message).toBe(`no pool drain in progress for pool ${POOL_NAME}; 6 nodes stay cordoned for a surge newer than this resolution`);
    expectPool(api, CORDONED);

    // After a restart the nodes' records say which surge cordoned them.
    const after = handlerFor(api, { replyMarginMs: 200 });
    await onlyTheNewerResolutionUncordons(api, after);
  });

  it('a newer surge that finds the pool cordoned by an older one takes the cordons over: the older surge\'s late resolution leaves them', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const clock = jumpableClock();
    const before = handlerFor(api, { replyMarginMs: 200, clock });
    await drainUntilDeadline(before, clock, surge(), api);
    // The price fell back, its resolution is still on its way, and the pool surged again: this drain finds every node cordoned.
    await drainUntilDeadline(before, clock, surge(undefined, TIME + 120_000), api);

    await before.handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    expectPool(api, CORDONED);
    // The nodes record the newer surge, so a restarted plugin knows it too.
    const record = (name: string) => poolRecord(api, name) ?? null;
    expect(record('pool-2')).toMatchObject({ pool: POOL_NAME, surgeAt: new Date(TIME + 120_000).toISOString(), wasUnschedulable: false });
    const after = handlerFor(api, { replyMarginMs: 200 });
    await onlyTheNewerResolutionUncordons(api, after);
  });

  it('a late resolution to the plugin that drained an older surge leaves the cordons another plugin process took over for a newer surge', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    // Two core replicas, each with its own plugin: the surges went to one each, the older surge's resolution to the first.
    const clock = jumpableClock();
    const first = handlerFor(api, { replyMarginMs: 200, clock });
    const second = handlerFor(api, { replyMarginMs: 200, clock });
    await drainUntilDeadline(first, clock, surge(), api);
    await drainUntilDeadline(second, clock, surge(undefined, TIME + 120_000), api);

    // Before, it answered ok, "uncordoned 0 nodes", where the README's answers say skipped.
    await onlyTheNewerResolutionUncordons(api, first);
  });

  it('a late resolution to another plugin process leaves the cordons of a drain a newer surge joined', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    // Two core replicas, each with its own plugin: both surges reached the first (the newer joined the drain in
    // progress), the older surge's late resolution the second, which knows the cordons only from the nodes' records.
    const clock = jumpableClock();
    const first = handlerFor(api, { replyMarginMs: 200, clock });
    const second = handlerFor(api, { replyMarginMs: 200 });
    const older = rejection(first.handle(surge(), context({ mode: 'pool' }, 4_000)));
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    const newer = rejection(first.handle(surge(undefined, TIME + 120_000), context({ mode: 'pool' }, 4_000)));
    // The join moves the nodes' records to the newer surge; before, they kept the older one's until a retry cordoned again.
    const newerAt = new Date(TIME + 120_000).toISOString();
    await vi.waitFor(() => POOL.forEach((name) => expect(recordedSurgeAt(api, name)).toBe(newerAt)), { timeout: 1_000, interval: 20 });

    // Before, this resolution undid the cordons the newer surge's drain went on with.
    expect(await second.handle(resolution(TIME + 60_000), context({ mode: 'pool' }))).toMatchObject({ status: 'skipped' });
    expectPool(api, CORDONED);
    // The drain's end is not what is tested: its calls' deadlines come now rather than in the rest of their 4 s.
    clock.jump(4_000);
    await Promise.all([older, newer]);
  });

  it("a drain stops at each node another plugin process's resolution has uncordoned: no pod moved off it, and it answers so (not a retry)", async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    // Two core replicas, each with its own plugin: the surge reached the first, its resolution the second.
    const first = handlerFor(api, { replyMarginMs: 200, maxDrainMs: 1_500 });
    const second = handlerFor(api, { replyMarginMs: 200 });
    const draining = first.handle(surge(), context({ mode: 'pool' }, 20_000));
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    expect(await resolvePool1Last(api, second)).toMatchObject({ attributes: { nodes_uncordoned: '6' } });
    expectPool(api, UNCORDONED);

    // Before, the drain went on past pool-1 and evicted every pod of pool-2 to pool-6 from their uncordoned nodes, then
    // answered DEADLINE_EXCEEDED for pool-1, and core's retry cordoned the pool again.
    const result = await draining;
    for (const name of POOL.slice(1)) expect(evictionsOn(api, name)).toEqual([]);
    expect(result.attributes).toMatchObject({ nodes_drained: '0', nodes_left: '0', nodes_released: '6' });
    expect(result.message).toMatch(
      new RegExp(`^drain of pool ${POOL_NAME}: 0 of 6 nodes drained, \\d pods evicted; 6 nodes no longer cordoned for this surge when their drain began or ended, not drained \\(pool-1, pool-2, pool-3, pool-4, pool-5, pool-6: uncordoned since\\)$`),
    );
    expectPool(api, UNCORDONED);
  });

  it("a node drain whose evictions a budget holds stops retrying them once another plugin process's resolution has uncordoned the node", async () => {
    // One web pod on pool-1: db-0's are the only evictions retried there, so each read of pool-1 from now is its check.
    const api = await startCluster({ secondWebPod: false });
    holdOn(api, 'pool-1');
    const first = handlerFor(api, { replyMarginMs: 200 });
    const draining = first.handle(surge(), context({ mode: 'pool' }, 20_000));
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    await resolvePool1Last(api, handlerFor(api, { replyMarginMs: 200 }));
    // Until db-0's retries have read pool-1 uncordoned (or, before, were refused twice more): a check answered just
    // before the uncordon landed lets one more eviction out, which the budget must still refuse. Read from the uncordon
    // on, not from now: a retry may have read it, and stopped, before this line.
    const since = api.requests.findLastIndex((r) => r.method === 'PATCH' && r.path === '/api/v1/nodes/pool-1') + 1;
    expect(since).toBeGreaterThan(0);
    const refusals = dbRefusals(api);
    const readSince = (): boolean => api.requests.slice(since).some((r) => r.method === 'GET' && r.path === '/api/v1/nodes/pool-1');
    await vi.waitFor(() => expect(readSince() || dbRefusals(api) > refusals + 1).toBe(true), { timeout: 10_000, interval: 5 });
    // db-0's budget would let it go now (a second replica elsewhere): before, the retries evicted it from its uncordoned node.
    api.cluster.addPod(pod('db-1', 'other-type', { labels: { app: 'db' }, kind: 'StatefulSet' }));

    const result = await draining;
    expect(api.cluster.evictions().filter((e) => e.name === 'db-0' && e.code === 201)).toEqual([]);
    expect(result.attributes).toMatchObject({ nodes_drained: '0', nodes_left: '0', nodes_released: '6' });
    expectPool(api, UNCORDONED);
  });

  it.each([
    ['in the same process', (first: DrainHandler) => first],
    ['after a restart', (_first: DrainHandler, api: KubeApiServer) => handlerFor(api, { replyMarginMs: 200 })],
  ])("core's retry of a drain that ran out of its call's time, %s, drains nothing: the pool's resolution marker says another process resolved the surge", async (_when, retrying) => {
    const api = await startCluster({ secondWebPod: false });
    const first = await timedOutThenResolvedElsewhere(api);

    // Before, the retry cordoned the whole pool again for the surge resolved elsewhere (after a restart, the plugin knew
    // nothing of the resolution; in the same process, it kept only the nodes it had been done with), and no resolution was left to undo it.
    const retried = await retrying(first, api).handle(surge(), { ...context({ mode: 'pool' }, 5_000), attempt: 2 });
    expect(retried).toMatchObject({ status: 'skipped', attributes: { nodes_drained: '0', stopped_early: 'true' } });
    expect(retried.message).toMatch(/resolved at 2026-11-30T02:01:00.000Z: nothing drained/);
    expectPool(api, UNCORDONED);
    for (const name of POOL.slice(1)) expect(evictionsOn(api, name)).toEqual([]);
  });

  it("a resolution another plugin process takes while this one is still cordoning the pool: the cordons that land after it are undone, and nothing is evicted", async () => {
    const api = await startCluster();
    const first = handlerFor(api, { replyMarginMs: 200 });
    const second = handlerFor(api, { replyMarginMs: 200 });
    // pool-6's cordon is on its way until the resolution has undone the rest of the pool.
    const late = held(cleanups);
    api.failNext(1, { effect: 'delay', until: late.until, method: 'PATCH', path: /\/nodes\/pool-6$/ });
    const draining = first.handle(surge(), context({ mode: 'pool' }, 20_000));
    await vi.waitFor(() => POOL.slice(0, 5).forEach((name) => expect(cordoned(api, name)).toEqual(CORDONED)), { timeout: 10_000, interval: 20 });
    expect(await second.handle(resolution(TIME + 60_000), context({ mode: 'pool' }))).toMatchObject({ attributes: { nodes_uncordoned: '5' } });
    late.open();

    // Before, pool-6's cordon landed after the resolution: the drain evicted its pods and left it cordoned for good.
    const result = await draining;
    expect(result.attributes).toMatchObject({ nodes_drained: '0', stopped_early: 'true' });
    expect(api.cluster.evictions()).toEqual([]);
    expectPool(api, UNCORDONED);
  });

  it("a resolution that stops this process's drain before its first cordon lists the pool again after writing the marker: another process's cordons, made before it read the marker, are undone", async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const leaseReads = (code: number): number => api.requests.filter((r) => r.method === 'GET' && r.path.includes('/leases/') && r.code === code).length;
    // Process B's drain listed the pool while it was still uncordoned; its read of the marker fails once and waits on its clock.
    const clock = manualClock(Date.now());
    const b = handlerFor(api, { clock });
    const long = (config: Record<string, string>): HandleContext => ({ ...context(config), deadline: new Date(clock.now() + 600_000) });
    api.failNext(1, { method: 'GET', path: /\/leases\// });
    const bDraining = b.handle(surge(), long({ mode: 'pool' }));
    await vi.waitFor(() => expect(leaseReads(500)).toBe(1), { timeout: 10_000, interval: 10 });
    // Process A cordons the whole pool and reads the marker (none yet) after its cordons: it drains on.
    const a = handlerFor(api, { replyMarginMs: 200 });
    const aDraining = a.handle(surge(), context({ mode: 'pool' }, 20_000));
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    expectPool(api, CORDONED);

    // B takes the resolution: it stops its own drain (not yet past its listing) and writes the marker. Its uncordon of
    // pool-1 lands last: A, held there, would otherwise go on to a node whose uncordon is still on its way (see resolvePool1Last).
    const last = held(cleanups);
    api.failNext(1, { effect: 'delay', until: last.until, method: 'PATCH', path: /\/nodes\/pool-1$/ });
    const stopping = b.handle(resolution(TIME + 60_000), long({ mode: 'pool' }));
    await vi.waitFor(() => expect(api.requests.some((r) => r.method === 'POST' && r.path.endsWith('/leases') && r.code === 201)).toBe(true), { timeout: 10_000, interval: 10 });
    await vi.waitFor(() => {
      clock.advance(1_000);
      expect(leaseReads(200)).toBeGreaterThan(0);
    }, { timeout: 10_000, interval: 10 });
    await vi.waitFor(() => POOL.slice(1).forEach((name) => expect(cordoned(api, name)).toEqual(UNCORDONED)), { timeout: 10_000, interval: 20 });
    last.open();
    await Promise.all([bDraining, stopping]);

    // Before, B undid only the cordons it remembered (none): A's stayed, and A drained the resolved pool.
    expectPool(api, UNCORDONED);
    const result = await aDraining;
    expect(result.attributes).toMatchObject({ nodes_drained: '0', nodes_left: '0' });
    for (const name of POOL.slice(1)) expect(evictionsOn(api, name)).toEqual([]);
  });

  it("a newer surge that joins while a node's check before a retry is on its way: the node is not taken for another drain's and is drained", async () => {
    // One web pod on pool-1: db-0's retries are the only ones that check pool-1, so the check held below is theirs.
    const api = await startCluster({ secondWebPod: false });
    holdOn(api, 'pool-1');
    const handler = handlerFor(api, { replyMarginMs: 200 });
    const draining = handler.handle(surge(), context({ mode: 'pool' }, 20_000));
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    // The next read of pool-1 (a check before an eviction's retry) is answered only after the newer surge has joined
    // this drain and moved pool-1's record to its time.
    const read = held(cleanups);
    const reading = api.failNext(1, { effect: 'delay', until: read.until, method: 'GET', path: /\/nodes\/pool-1$/ });
    await vi.waitFor(() => expect(reading.hits).toBe(1), { timeout: 5_000, interval: 5 });
    const newer = handler.handle(surge(undefined, TIME + 120_000), context({ mode: 'pool' }, 20_000));
    await vi.waitFor(() => expect(recordedSurgeAt(api, 'pool-1')).toBe(new Date(TIME + 120_000).toISOString()), { timeout: 5_000, interval: 20 });
    read.open();
    // db-0's budget lets it go now: the drain of pool-1 goes on and moves it. Before, the check that came back took the
    // newer record for another process's drain, released pool-1 with db-0 still on it, and answered ok.
    api.cluster.addPod(pod('db-1', 'other-type', { labels: { app: 'db' }, kind: 'StatefulSet' }));
    const [result] = await Promise.all([draining, newer]);
    expect(result.attributes).toMatchObject({ nodes_drained: '6', nodes_left: '0', nodes_released: '0' });
    expect(api.cluster.evictions().filter((e) => e.name === 'db-0' && e.code === 201)).toHaveLength(1);
    expectPool(api, CORDONED);
  });

  it('after a restart, a newer surge that joins the retry of an older one holds the cordons that retry found: the older surge\'s late resolution leaves them, here and in another process', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    // The older surge's drain runs out of time; the plugin restarts; core's retry of that surge finds the pool cordoned.
    const clock = jumpableClock();
    await drainUntilDeadline(handlerFor(api, { replyMarginMs: 200, clock }), clock, surge(), api);
    // The restarted process's clock: on time again, as the deadlines core sets.
    const restartedClock = jumpableClock();
    const after = handlerFor(api, { replyMarginMs: 200, clock: restartedClock });
    const before = dbRefusals(api);
    const retry = rejection(after.handle(surge(), { ...context({ mode: 'pool' }, 4_000), attempt: 2 }));
    await vi.waitFor(() => expect(dbRefusals(api)).toBeGreaterThan(before), { timeout: 10_000, interval: 20 });
    // The price fell back and surged again: the newer surge joins the retry's drain.
    const newer = rejection(after.handle(surge(undefined, TIME + 120_000), context({ mode: 'pool' }, 4_000)));
    // Before, the nodes kept the older surge's record: the retry had found them cordoned, so the join moved nothing.
    await vi.waitFor(() => POOL.forEach((name) => expect(recordedSurgeAt(api, name)).toBe(new Date(TIME + 120_000).toISOString())), { timeout: 2_000, interval: 20 });

    // The older surge's late resolution, to another plugin process: it leaves the newer surge's pool cordoned.
    expect(await handlerFor(api, { replyMarginMs: 200 }).handle(resolution(TIME + 60_000), context({ mode: 'pool' }))).toMatchObject({ status: 'skipped' });
    expectPool(api, CORDONED);
    restartedClock.jump(4_000);
    await Promise.all([retry, newer]);
    // And to this one, once the drain has run out of time: before, it undid every cordon its memory had learnt from the old records.
    await onlyTheNewerResolutionUncordons(api, after);
  });

  /** A pool drain held at pool-1 (db-0's budget), cut by a rolling update of the plugin serving it: its call fails UNAVAILABLE. */
  async function cutByShutdown(api: KubeApiServer): Promise<void> {
    holdOn(api, 'pool-1');
    const handler = handlerFor(api);
    const server = await serve(0, handler, { host: '127.0.0.1', shutdownTimeoutMs: 300, logger: silent });
    const client = new PluginClient(`127.0.0.1:${server.port}`);
    cleanups.push(() => server.close(), () => client.close());
    const call = rejection(client.handle(surge(), { flow: 'spot-price-surge', timeoutMs: 60_000, config: { mode: 'pool' } }));
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    await server.close();
    await handler.close();
    expect((await call).code).toBe(Code.Unavailable);
    expectPool(api, CORDONED);
  }

  it('a pool drain cut at the shutdown timeout (a rolling update) is finished by core\'s retry on the new process', async () => {
    const api = await startCluster();
    await cutByShutdown(api);
    // db-0 may go now (a second replica elsewhere): the retry drains the whole pool, no node cordoned twice.
    api.cluster.addPod(pod('db-1', 'other-type', { labels: { app: 'db' }, kind: 'StatefulSet' }));
    const result = await handlerFor(api).handle(surge(), { ...context({ mode: 'pool', maxUnavailable: '6' }), attempt: 2 });
    expect(result.attributes).toMatchObject({ nodes_selected: '6', nodes_drained: '6', nodes_left: '0' });
    for (const name of POOL) expect(patchesOf(api, name)).toHaveLength(1);
  });

  it('a pool drain cut at the shutdown timeout (a rolling update) leaves its cordons for the resolution the new process takes', async () => {
    const api = await startCluster();
    await cutByShutdown(api);
    const undo = await handlerFor(api).handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    expect(undo.attributes).toMatchObject({ nodes_uncordoned: '6' });
    expectPool(api, UNCORDONED);
    for (const name of POOL) expect(api.cluster.node(name)!.metadata.annotations?.[POOL_CORDON]).toBeUndefined();
  });

  it("a node another plugin process's interruption drain took over stays cordoned when the surge resolves", async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    // Two core replicas, each with its own plugin: the surge reached the first, pool-3's interruption notice the second.
    const clock = jumpableClock();
    const first = handlerFor(api, { replyMarginMs: 200, clock });
    const second = handlerFor(api);
    await drainUntilDeadline(first, clock, surge(), api);
    const notice: CloudEvent = { ...surge({ node: 'pool-3' }), id: 'notice-pool-3', type: 'aws.ec2.spot-interruption' };
    expect(await second.handle(notice, context({}))).toMatchObject({ attributes: { node: 'pool-3', pods_remaining: '0' } });

    const undo = await first.handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    expect(undo.message).toMatch(/uncordoned 5 nodes an earlier drain of the pool left cordoned \(pool-1, pool-2, pool-4, pool-5, pool-6\)$/);
    expect(cordoned(api, 'pool-3')).toEqual(CORDONED);
  });

  it('a node whose pods are all terminating already (an earlier try evicted them) is waited for before the next node drains', async () => {
    const api = await startCluster({ secondWebPod: false });
    // 300 s of grace: 1.5 s in the stand-in. pool-1's other pods are gone already.
    api.cluster.addPod(pod('slow-pool-1', 'pool-1', { grace: 300 }));
    for (const name of ['api-pool-1a', 'api-pool-1b', 'web-pool-1']) api.cluster.deletePod('apps', name, 0);
    api.cluster.deletePod('apps', 'slow-pool-1', 300);
    await handlerFor(api).handle(surge(), context({ mode: 'pool' }));
    expect(evictionsOn(api, 'pool-1')).toEqual([]);
    const slowGone = api.cluster.removals().find((r) => r.name === 'slow-pool-1')!.atMs;
    // One node at a time (maxUnavailable 1): pool-1 still had a pod going.
    expect(Math.min(...evictionsOn(api, 'pool-2').map((e) => e.atMs))).toBeGreaterThanOrEqual(slowGone);
  });

  it('over real gRPC: the flow config travels with each call, and so does a refusal naming the key', async () => {
    const api = await startCluster();
    const handler = handlerFor(api);
    const server = await serve(0, handler, { host: '127.0.0.1' });
    const client = new PluginClient(`127.0.0.1:${server.port}`);
    cleanups.push(() => server.close(), () => client.close());

    const result = await client.handle(surge(), { flow: 'spot-price-surge', timeoutMs: 30_000, config: { mode: 'pool', maxUnavailable: '3' } });
    expect(result.attributes).toMatchObject({ pool: `${ZONE}/${TYPE}`, nodes_selected: '6', nodes_drained: '6', nodes_left: '0', stopped_early: 'false' });
    expect(drainWindows(api)).toHaveLength(6);
    expect(mostAtOnce(drainWindows(api))).toBeLessThanOrEqual(3);

    const err = await rejection(client.handle(surge(), { flow: 'spot-price-surge', timeoutMs: 5_000, config: { mode: 'pool', minInterval: '30' } }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/"minInterval" must be a duration such as 30s or 1m30s, got "30"/);
  });

  it('dry-run walks the pool and changes nothing', async () => {
    const api = await startCluster();
    const handler = handlerFor(api, { dryRun: true });

    const result = await handler.handle(surge(), context({ mode: 'pool', maxUnavailable: '3' }));
    expect(result).toMatchObject({ attributes: { nodes_selected: '6', nodes_drained: '6', dry_run: 'true' } });
    expect(result.message).toMatch(/^dry run: would drain pool eu-west-1a\/m5.large \(6 nodes\)$/);
    expect(api.requests.filter((r) => r.method !== 'GET')).toHaveLength(0);
  });

  it.each([
    [{ mode: 'pool', maxUnavailable: '0' }, /"maxUnavailable" must be an integer >= 1, got "0"/],
    [{ mode: 'pool', minInterval: 'soon' }, /"minInterval" must be a duration such as 30s or 1m30s, got "soon"/],
    [{ mode: 'pool', selector: ' ' }, /"selector" must be a label selector/],
    [{ mode: 'pools' }, /"mode" must be pool or instance, got "pools"/],
    [{ maxUnavailable: '2' }, /"maxUnavailable" applies only with mode: pool/],
    [{ mode: 'pool', maxUnavailble: '2' }, /unknown key "maxUnavailble"/],
  ])('refuses the flow config %j with INVALID_ARGUMENT naming the key', async (config, message) => {
    const api = await startCluster();
    const handler = handlerFor(api);
    const err = await rejection(handler.handle(surge(), context(config)));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(message);
    expect(api.requests.filter((r) => r.method !== 'GET')).toHaveLength(0);
  });
});

/** Adds a database pod under a budget that never allows its eviction: the node's drain holds there. */
function holdOn(api: KubeApiServer, name: string): void {
  api.cluster.addPod(pod('db-0', name, { labels: { app: 'db' }, kind: 'StatefulSet' }));
  api.cluster.addPodDisruptionBudget({ metadata: { name: 'db', namespace: 'apps' }, spec: { selector: { matchLabels: { app: 'db' } }, minAvailable: 1 } });
}
const dbRefusals = (api: KubeApiServer): number => api.cluster.evictions().filter((e) => e.name === 'db-0' && e.code === 429).length;
const dbRefused = (api: KubeApiServer): boolean => dbRefusals(api) > 0;

/**
 * Calls `handler`, whose clock is `clock`, with 2 s left, for a drain of the pool held at pool-1 ({@link holdOn}) that runs
 * out of its time; once the drain is held there (every node of the pool records the event's surge, and db-0's eviction
 * was refused since the call began), the clock jumps past that time, so the answer is the one at the deadline without the
 * test waiting the rest of it out.
 */
async function drainUntilDeadline(handler: DrainHandler, clock: JumpableClock, event: CloudEvent, api: KubeApiServer): Promise<PluginError> {
  const refusedBefore = dbRefusals(api);
  let settled = false;
  // The deadline on the handler's clock, which an earlier jump may have moved ahead of this process's.
  const answer = rejection(handler.handle(event, { ...context({ mode: 'pool' }), deadline: new Date(clock.now() + 2_000) })).finally(() => (settled = true));
  const recordedAll = (): boolean => POOL.every((name) => !api.cluster.node(name) || recordedSurgeAt(api, name) === event.time);
  await vi.waitFor(() => expect((dbRefusals(api) > refusedBefore && recordedAll()) || settled).toBe(true), { timeout: 10_000, interval: 10 });
  clock.jump(2_000);
  const err = await answer;
  expect(err.code).toBe(Code.DeadlineExceeded);
  return err;
}
const POOL_NAME = `${ZONE}/${TYPE}`;

/**
 * A surge's drain in the plugin returned, held on pool-1 by a pod slow to go until its call's time is up (no budget
 * retry, so no check of the node), while another plugin process takes the resolution (TIME + 1m) and uncordons the pool.
 */
async function timedOutThenResolvedElsewhere(api: KubeApiServer): Promise<DrainHandler> {
  api.cluster.addPod(pod('slow-pool-1', 'pool-1', { grace: 1_000 }));
  const first = handlerFor(api, { replyMarginMs: 200 });
  const draining = rejection(first.handle(surge(), context({ mode: 'pool' }, 1_500)));
  await vi.waitFor(() => expect(api.cluster.evictions().some((e) => e.name === 'slow-pool-1' && e.code === 201)).toBe(true), { timeout: 5_000, interval: 20 });
  expect(await handlerFor(api, { replyMarginMs: 200 }).handle(resolution(TIME + 60_000), context({ mode: 'pool' }))).toMatchObject({ attributes: { nodes_uncordoned: '6' } });
  expect((await draining).code).toBe(Code.DeadlineExceeded);
  return first;
}

/**
 * The resolution of the surge at TIME, to `handler` (another plugin process), with its uncordon of pool-1 landing after
 * those of the rest of the pool: the uncordons of one resolution are not one change, and a drain (held at pool-1) that
 * read a node between them would go on to one whose uncordon is still on its way, a race no check can close.
 */
async function resolvePool1Last(api: KubeApiServer, handler: DrainHandler): Promise<HandleResult> {
  const last = held(cleanups);
  api.failNext(1, { effect: 'delay', until: last.until, method: 'PATCH', path: /\/nodes\/pool-1$/ });
  const undo = handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
  await vi.waitFor(() => POOL.slice(1).forEach((name) => expect(cordoned(api, name)).toEqual(UNCORDONED)), { timeout: 10_000, interval: 20 });
  last.open();
  return undo;
}

describe('pool mode: the edges', () => {
  it('refuses a call with no time left before its reply margin; one without a deadline drains for maxDrainMs', async () => {
    const api = await startCluster({ secondWebPod: false });
    const clock = manualClock();
    const handler = handlerFor(api, { clock, replyMarginMs: 1_000, poolMaxUnavailable: 6 });

    // Exactly the margin left: the time to drain is zero.
    const err = await rejection(handler.handle(surge(), { ...context({ mode: 'pool' }), deadline: new Date(clock.now() + 1_000) }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toBe(`no time left for a pool drain: the call's deadline ${new Date(clock.now()).toISOString()} (less the reply margin) has passed`);
    expect(poolListings(api)).toHaveLength(0);

    // On the real clock: pool-1 cannot drain, so the call ends when maxDrainMs has passed (without it, never).
    holdOn(api, 'pool-1');
    const bounded = await rejection(handlerFor(api, { maxDrainMs: 1_000 }).handle(surge(), { ...context({ mode: 'pool' }), deadline: undefined }));
    expect(bounded).toBeInstanceOf(DrainIncompleteError);
    expect((bounded as DrainIncompleteError).attributes).toMatchObject({ nodes_selected: '6', nodes_left: '6' });
  });

  it('drains the pool for a call whose deadline is further out than one timer holds (a stream call may set 49.7 days)', async () => {
    const api = await startCluster({ secondWebPod: false });
    const result = await handlerFor(api).handle(surge(), context({ mode: 'pool', maxUnavailable: '6' }, 30 * 86_400_000));
    expect(result.attributes).toMatchObject({ nodes_selected: '6', nodes_drained: '6', nodes_left: '0' });
  });

  it('refuses an event that names no pool; a node the event names but the cluster lacks is NOT_FOUND, or skipped with nodeNotFound: skip', async () => {
    const api = await startCluster();
    const handler = handlerFor(api);

    for (const labels of [{}, { availability_zone: ZONE }] as Array<Record<string, string>>) {
      const err = await rejection(handler.handle(surge(labels), context({ mode: 'pool' })));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.message).toBe(
        'the event names no pool: it has neither "availability_zone" and "instance_type" labels nor a "node" or "instance_id" label, and the flow\'s plugin config sets no selector',
      );
    }
    const byInstance = await rejection(handler.handle(surge({ instance_id: 'i-gone' }), context({ mode: 'pool' })));
    expect(byInstance.code).toBe(Code.NotFound);
    expect(byInstance.message).toBe("the node of instance i-gone is not in this cluster, so the event's pool is unknown");
    const byName = await rejection(handler.handle(surge({ node: 'gone-1' }), context({ mode: 'pool' })));
    expect(byName.code).toBe(Code.NotFound);
    expect(byName.message).toBe('node "gone-1" is not in this cluster, so the event\'s pool is unknown');

    const skipping = handlerFor(api, { nodeNotFound: 'skip' });
    expect(await skipping.handle(surge({ node: 'gone-1' }), context({ mode: 'pool' }))).toEqual({
      status: 'skipped',
      message: 'the node the event names is not in this cluster; nothing to drain',
    });
    expect(api.requests.filter((r) => r.method !== 'GET')).toHaveLength(0);
  });

  it('a pool with no node is skipped with every count zero', async () => {
    const api = await startCluster();
    const logger = recordingLogger();
    const result = await handlerFor(api, { logger }).handle(surge(), context({ mode: 'pool', selector: 'node-group=none' }));
    expect(result).toEqual({
      status: 'skipped',
      message: 'no node in pool node-group=none; nothing to drain',
      attributes: { pool: 'node-group=none', nodes_selected: '0', nodes_drained: '0', nodes_left: '0', nodes_released: '0', stopped_early: 'false', duration_ms: expect.stringMatching(/^\d+$/) },
    });
    // The time the call took, not a timestamp.
    expect(Number(result.attributes?.duration_ms)).toBeLessThan(60_000);
    expect(logger.lines.filter((l) => l.message === 'draining pool')).toHaveLength(0);
  });

  it('a pool an earlier drain cordoned is drained, not skipped; a pool with nothing to evict is cordoned and counted drained', async () => {
    const api = await startCluster();
    for (const name of POOL) {
      api.cluster.patchNode(name, 'application/merge-patch+json', {
        metadata: { labels: { [MARK]: 'true' } },
        spec: { unschedulable: true, taints: [{ key: MARK, value: 'true', effect: 'NoSchedule' }] },
      });
    }
    api.cluster.addNode(node('batch-1', 'eu-west-1c', 'r5.large', { 'node-group': 'batch' }));
    api.cluster.addNode(node('batch-2', 'eu-west-1c', 'r5.large', { 'node-group': 'batch' }));
    for (const name of ['batch-1', 'batch-2']) api.cluster.addPod(pod(`proxy-${name}`, name, { kind: 'DaemonSet' }));
    const logger = recordingLogger();
    const handler = handlerFor(api, { logger });

    const cordonedBefore = await handler.handle(surge(), context({ mode: 'pool', maxUnavailable: '3' }));
    expect(cordonedBefore.status).toBeUndefined();
    expect(cordonedBefore.message).toBe(`drained pool ${POOL_NAME}: 6 of 6 nodes drained, 19 pods evicted`);
    for (const name of POOL) expect(patchesOf(api, name)).toHaveLength(0);

    const nothingToEvict = await handler.handle(surge(), context({ mode: 'pool', selector: 'node-group=batch' }));
    expect(nothingToEvict.status).toBeUndefined();
    expect(nothingToEvict.message).toBe('drained pool node-group=batch: 2 of 2 nodes drained, 0 pods evicted');
    expect(cordoned(api, 'batch-1')).toEqual(CORDONED);
    // A node already cordoned gets no second SpotInterruption; one cordoned now does.
    await handler.eventsRecorded();
    const interrupted = api.cluster.events().filter((e) => e.reason === 'SpotInterruption').map((e) => e.involvedObject.name);
    expect(interrupted.sort()).toEqual(['batch-1', 'batch-2']);

    const info = logger.lines.filter((l) => l.level === 'info');
    expect(info).toContainEqual({ level: 'info', message: 'draining pool', fields: { pool: POOL_NAME, nodes: 6, maxUnavailable: 3, minIntervalMs: 0 } });
    expect(info).toContainEqual({ level: 'info', message: 'drained pool', fields: expect.objectContaining({ pool: 'node-group=batch', nodes_drained: '2' }) });
  });

  it('a call that joins a drain in progress answers DEADLINE_EXCEEDED at its own deadline, and the drain goes on', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const logger = recordingLogger();
    const handler = handlerFor(api, { logger });

    const first = handler.handle(surge(), context({ mode: 'pool' }));
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    const err = await rejection(handler.handle(surge(), context({ mode: 'pool' }, 1_500)));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(err.message).toBe(`the drain of pool ${POOL_NAME}, begun by another call, was still in progress at this call's deadline`);
    expect(logger.lines).toContainEqual({ level: 'info', message: 'pool drain already in progress: waiting for it', fields: { pool: POOL_NAME } });

    await handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    expect((await first).attributes).toMatchObject({ nodes_left: '6', stopped_early: 'true' });
    expect(poolListings(api)).toHaveLength(1);
  });

  it('a call that joined a drain answers ABORTED (retried), not CANCELLED, when the call that began the drain is cancelled', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const handler = handlerFor(api);
    const client = new AbortController();
    const first = rejection(handler.handle(surge(), { ...context({ mode: 'pool' }), signal: client.signal }));
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    const joined = rejection(handler.handle(surge(), context({ mode: 'pool' })));
    // The second call has joined the drain (no call of its own comes before) by the next turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    // The first call's client gives up (its stream went away, say): that call is over, the second one is not.
    client.abort(new PluginError(Code.Canceled, 'call cancelled by the client'));

    expect((await first).code).toBe(Code.Canceled);
    const err = await joined;
    expect(err.code).toBe(Code.Aborted);
    expect(err.message).toBe(`the drain of pool ${POOL_NAME}, begun by another call, ended with that call's cancel (call cancelled by the client): try again`);
  });

  it("an event time ahead of the plugin's clock counts as the time the call came: a resolution from the future does not hold off later surges, a surge from the future is stopped", async () => {
    const api = await startCluster({ secondWebPod: false });
    const clock = manualClock();
    const handler = handlerFor(api, { clock });
    const long = (config: Record<string, string>): HandleContext => ({ ...context(config), deadline: new Date(clock.now() + 600_000) });
    const aYear = 365 * 86_400_000;

    // A sender whose clock runs a year ahead: its resolution is as of now, not a year from now.
    expect(await handler.handle(resolution(clock.now() + aYear), long({ mode: 'pool' }))).toMatchObject({ status: 'skipped' });
    clock.advance(1_000);
    // One node at a time: the web budget refuses no eviction, whose retry would wait on the manual clock.
    const next = await handler.handle(surge(undefined, clock.now()), long({ mode: 'pool' }));
    expect(next.attributes).toMatchObject({ nodes_drained: '6', stopped_early: 'false' });

    // A surge dated a year ahead, held at pool-1: a resolution that comes after it stops it.
    holdOn(api, 'pool-1');
    clock.advance(1_000);
    const draining = handler.handle(surge(undefined, clock.now() + aYear), long({ mode: 'pool' }));
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    clock.advance(1_000);
    expect((await handler.handle(resolution(clock.now()), long({ mode: 'pool' }))).attributes).toMatchObject({ stopped_early: 'true' });
    expect((await draining).attributes).toMatchObject({ stopped_early: 'true' });
  });

  it('a resolution older than the surge being drained does not stop it; a surge already resolved logs why it drains nothing', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const logger = recordingLogger();
    const handler = handlerFor(api, { logger });

    const draining = handler.handle(surge(undefined, TIME + 60_000), context({ mode: 'pool' }));
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    expect(await handler.handle(resolution(TIME), context({ mode: 'pool' }))).toEqual({
      status: 'skipped',
      message: `the drain in progress for pool ${POOL_NAME} follows a surge newer than this resolution (2026-11-30T02:00:00.000Z); not stopped`,
      attributes: { pool: POOL_NAME },
    });
    await handler.handle(surge(undefined, TIME - 1), context({ mode: 'pool' }));
    expect(logger.lines).toContainEqual({
      level: 'info',
      message: 'pool surge already resolved: not draining',
      fields: { pool: POOL_NAME, surgeAt: '2026-11-30T01:59:59.999Z', resolvedAt: '2026-11-30T02:00:00.000Z' },
    });

    const stop = await handler.handle(resolution(TIME + 120_000), context({ mode: 'pool' }));
    expect(stop.message).toMatch(/^stopped the drain of pool eu-west-1a\/m5.large: drain of pool eu-west-1a\/m5.large stopped early \(the surge resolved\): 0 of 6 nodes drained, 0 pods evicted; uncordoned 6 \(pool-1, pool-2, pool-3, pool-4, pool-5, pool-6\)$/);
    expect((await draining).attributes).toMatchObject({ stopped_early: 'true' });
    expect(logger.lines).toContainEqual({ level: 'info', message: 'pool drain stopped early', fields: expect.objectContaining({ pool: POOL_NAME, uncordoned: [...POOL] }) });
    // pool-1's drain was stopped on purpose: logged as stopped, not as incomplete.
    expect(logger.lines).toContainEqual({ level: 'info', message: 'drain stopped', fields: expect.objectContaining({ node: 'pool-1', pods: expect.arrayContaining(['apps/db-0']) }) });
    expect(logger.lines.filter((l) => l.message === 'drain incomplete')).toEqual([]);
  });

  it("a newer surge that joins the drain in progress keeps it going past the older surge's late resolution", async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const handler = handlerFor(api);
    const first = handler.handle(surge(), context({ mode: 'pool' }));
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    // The price fell back at TIME + 1m and surged again at TIME + 2m; that surge comes while the first one's drain runs.
    const second = handler.handle(surge(undefined, TIME + 120_000), context({ mode: 'pool' }));
    await new Promise((resolve) => setImmediate(resolve));
    // The first surge's resolution comes late: the pool surges still.
    expect(await handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' }))).toMatchObject({ status: 'skipped', attributes: { pool: POOL_NAME } });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expectPool(api, CORDONED);

    // The second surge's own resolution stops it, for both calls.
    const stop = await handler.handle(resolution(TIME + 180_000), context({ mode: 'pool' }));
    expect(stop.message).toMatch(/uncordoned 6 \(pool-1, pool-2, pool-3, pool-4, pool-5, pool-6\)$/);
    expect((await first).attributes).toMatchObject({ stopped_early: 'true' });
    expect((await second).attributes).toMatchObject({ stopped_early: 'true' });
  });

  it('the cordons a drain leaves at its deadline are held for the newer surge that joined it: the older surge\'s late resolution leaves them', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const clock = jumpableClock();
    const handler = handlerFor(api, { replyMarginMs: 200, clock });
    const first = rejection(handler.handle(surge(), context({ mode: 'pool' }, 2_000)));
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    const second = rejection(handler.handle(surge(undefined, TIME + 120_000), context({ mode: 'pool' }, 2_000)));
    // Once the newer surge has joined (the nodes record it), both deadlines come now, not in the rest of their 2 s.
    const newerAt = new Date(TIME + 120_000).toISOString();
    await vi.waitFor(() => POOL.forEach((name) => expect(recordedSurgeAt(api, name)).toBe(newerAt)), { timeout: 10_000, interval: 20 });
    clock.jump(2_000);
    expect((await first).code).toBe(Code.DeadlineExceeded);
    expect((await second).code).toBe(Code.DeadlineExceeded);

    expect(await handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' }))).toMatchObject({ status: 'skipped' });
    expectPool(api, CORDONED);
  });

  it("an event without a time counts as of when it first came: core's retry of a surge resolved since drains nothing", async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const handler = handlerFor(api, { replyMarginMs: 200 });
    const { time: _surgeTime, ...timeless } = surge();
    const { time: _resolutionTime, ...timelessResolution } = resolution(TIME);
    await rejection(handler.handle(timeless, context({ mode: 'pool' }, 2_000)));
    expect(await handler.handle(timelessResolution, context({ mode: 'pool' }))).toMatchObject({ attributes: { nodes_uncordoned: '6' } });

    const retry = await handler.handle(timeless, { ...context({ mode: 'pool' }, 2_000), attempt: 2 });
    expect(retry).toMatchObject({ status: 'skipped' });
    expectPool(api, UNCORDONED);
  });

  it("a surge without a time is remembered through a full memory of such events: core's retry of it after its resolution drains nothing", async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const handler = handlerFor(api, { replyMarginMs: 200 });
    // 9,999 other events without a time (surges of a pool of no node: one listing each) came before: the surge is the 10,000th remembered.
    const others = Array.from({ length: 9_999 }, (_, i) => i);
    const empty = context({ mode: 'pool', selector: 'pool=none' });
    for (let i = 0; i < others.length; i += 50) {
      await Promise.all(others.slice(i, i + 50).map((n) => handler.handle({ ...surge(), id: `other-${n}`, time: undefined }, empty)));
    }
    const { time: _surgeTime, ...timeless } = surge();
    const { time: _resolutionTime, ...timelessResolution } = resolution(TIME);
    await rejection(handler.handle(timeless, context({ mode: 'pool' }, 2_000)));
    // The 10,001st: the memory, full, forgot its oldest, not the surge's first call (it was cleared whole, and the retry drained the pool again).
    expect(await handler.handle(timelessResolution, context({ mode: 'pool' }))).toMatchObject({ attributes: { nodes_uncordoned: '6' } });

    const retry = await handler.handle(timeless, { ...context({ mode: 'pool' }, 2_000), attempt: 2 });
    expect(retry).toMatchObject({ status: 'skipped' });
    expectPool(api, UNCORDONED);
  }, 60_000);

  it('a surge newer than the resolution that stopped the drain, come while that drain still undoes its cordons, drains the pool anew after it', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const handler = handlerFor(api);
    const draining = handler.handle(surge(), context({ mode: 'pool' }));
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    // The stopped drain's uncordon of pool-2 is held at the stand-in: the drain is winding down when the price surges again.
    const uncordon = held(cleanups);
    api.failNext(1, { effect: 'delay', until: uncordon.until, method: 'PATCH', path: /^\/api\/v1\/nodes\/pool-2$/ });
    const before = api.requests.length;
    const stopping = handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    await vi.waitFor(() => expect(api.requests.slice(before).some((r) => r.method === 'GET' && r.path === '/api/v1/nodes/pool-2')).toBe(true), { timeout: 10_000, interval: 20 });
    // A second database replica runs elsewhere now: the budget lets db-0 go in the next drain. (Not a deletion of db-0:
    // its StatefulSet's replacement could land on a node the stopped drain has uncordoned, and hold the next drain there.)
    api.cluster.addPod(pod('db-1', 'other-type', { labels: { app: 'db' }, kind: 'StatefulSet' }));
    const again = handler.handle(surge(undefined, TIME + 120_000), context({ mode: 'pool', maxUnavailable: '6' }));
    // The new surge call has reached the pool's drain (no call of its own comes before) by the next turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    uncordon.open();

    expect((await draining).attributes).toMatchObject({ stopped_early: 'true' });
    expect((await stopping).message).toMatch(/uncordoned 6 \(pool-1, pool-2, pool-3, pool-4, pool-5, pool-6\)$/);
    // Not the stopped drain's answer: a drain of its own, after the uncordons, which cordons and drains the whole pool.
    expect((await again).attributes).toMatchObject({ nodes_selected: '6', nodes_drained: '6', nodes_left: '0', stopped_early: 'false' });
    expectPool(api, CORDONED);
  });

  it('a resolution answers at its own deadline while the drain it stopped is still winding down', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const handler = handlerFor(api);
    const patches = held(cleanups);

    const draining = handler.handle(surge(), context({ mode: 'pool' }));
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    // The uncordons the stop makes are held until the resolution has answered.
    api.failNext(6, { effect: 'delay', until: patches.until, method: 'PATCH' });
    const stop = await handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' }, 1_500));
    expect(stop).toEqual({ message: `stopped the drain of pool ${POOL_NAME} (still stopping at this call's deadline)`, attributes: { pool: POOL_NAME, stopped_early: 'true' } });

    patches.open();
    expect((await draining).attributes).toMatchObject({ nodes_left: '6', stopped_early: 'true' });
    expectPool(api, UNCORDONED);
  });

  it('a resolution of a drain that then fails for good says so, and the drain answers the failure', async () => {
    const api = await startCluster();
    const clock = manualClock();
    const handler = handlerFor(api, { clock, watchCache: false });
    const long = (config: Record<string, string>): HandleContext => ({ ...context(config), deadline: new Date(clock.now() + 600_000) });
    // The pool's listing fails once (its retry waits on the manual clock), then is refused.
    api.failNext(1, { method: 'GET', path: /^\/api\/v1\/nodes$/ });

    const draining = rejection(handler.handle(surge(), long({ mode: 'pool' })));
    await vi.waitFor(() => expect(poolListings(api).some((r) => r.code === 500)).toBe(true), { timeout: 10_000, interval: 10 });
    const stopping = handler.handle(resolution(TIME + 60_000), long({ mode: 'pool' }));
    api.failNext(1, { code: 403, method: 'GET', path: /^\/api\/v1\/nodes$/ });
    await vi.waitFor(() => {
      clock.advance(1_000);
      expect(poolListings(api).some((r) => r.code === 403)).toBe(true);
    }, { timeout: 10_000, interval: 10 });

    const err = await draining;
    expect(err.code).toBe(Code.PermissionDenied);
    expect(await stopping).toEqual({ message: `stopped the drain of pool ${POOL_NAME} (${err.message})`, attributes: { pool: POOL_NAME, stopped_early: 'true' } });
  });

  it('a node gone at its cordon counts as drained and is not evicted from', async () => {
    const api = await startCluster();
    api.failNext(1, { code: 404, method: 'PATCH', path: /^\/api\/v1\/nodes\/pool-3$/ });
    const result = await handlerFor(api).handle(surge(), context({ mode: 'pool', maxUnavailable: '3' }));
    expect(result.message).toBe(`drained pool ${POOL_NAME}: 6 of 6 nodes drained, 16 pods evicted`);
    expect(evictionsOn(api, 'pool-3')).toHaveLength(0);
    expect(api.requests.filter((r) => r.method === 'GET' && r.query.fieldSelector === 'spec.nodeName=pool-3')).toHaveLength(0);
  });

  it.each([
    ['a cordon', { method: 'PATCH', path: /^\/api\/v1\/nodes\/pool-2$/ }],
    ['a pod listing', { method: 'GET', path: /^\/api\/v1\/pods$/ }],
    ['an eviction', { method: 'POST', path: /\/eviction$/ }],
  ])('%s refused for good (403) fails the pool with PERMISSION_DENIED for every call sharing it, and no node drains after it', async (_what, where) => {
    const api = await startCluster();
    const handler = handlerFor(api, { watchCache: false });
    api.failNext(1, { code: 403, ...where });

    const [a, b] = await Promise.all([rejection(handler.handle(surge(), context({ mode: 'pool' }))), rejection(handler.handle(surge(), context({ mode: 'pool' })))]);
    for (const err of [a, b]) {
      expect(err.code).toBe(Code.PermissionDenied);
      expect(err).not.toBeInstanceOf(DrainIncompleteError);
    }
    for (const name of POOL.slice(1)) expect(evictionsOn(api, name)).toHaveLength(0);
  });

  it('a pod listing that does not answer by the deadline leaves the nodes for the retry (DEADLINE_EXCEEDED)', async () => {
    const api = await startCluster();
    const handler = handlerFor(api, { watchCache: false, replyMarginMs: 200 });
    api.failNext(100, { effect: 'delay', until: held(cleanups).until, method: 'GET', path: /^\/api\/v1\/pods$/ });

    const err = await rejection(handler.handle(surge(), context({ mode: 'pool' }, 1_500)));
    expect(err).toBeInstanceOf(DrainIncompleteError);
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect((err as DrainIncompleteError).attributes).toMatchObject({ nodes_drained: '0', nodes_left: '6' });
  });

  it("maxDrainMs bounds each node's drain: a node that cannot drain is left, and the rest of the pool drains", async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const logger = recordingLogger();
    const handler = handlerFor(api, { maxDrainMs: 1_000, logger });

    const err = await rejection(handler.handle(surge(), context({ mode: 'pool' }, 10_000)));
    expect(err).toBeInstanceOf(DrainIncompleteError);
    expect((err as DrainIncompleteError).attributes).toMatchObject({ nodes_drained: '5', nodes_left: '1' });
    expect(err.message).toBe(`drain of pool ${POOL_NAME} stopped at its deadline: 5 of 6 nodes drained, 15 pods evicted; nodes_left=1 (pool-1)`);
    for (const name of POOL.slice(1)) expect(api.cluster.pods(name).map((p) => p.metadata.name)).toEqual([`proxy-${name}`]);
    expect(logger.lines).toContainEqual({ level: 'warn', message: 'pool drain incomplete', fields: expect.objectContaining({ pool: POOL_NAME, nodes_left: '1', left: ['pool-1'] }) });
  });

  it('a pod no eviction can move (two budgets select it) holds its own node only: the rest of the pool drains, and the answer names the node and the pod', async () => {
    const api = await startCluster({ secondWebPod: false });
    api.cluster.addPod(pod('cache-0', 'pool-2', { labels: { app: 'cache' }, kind: 'StatefulSet' }));
    for (const name of ['cache', 'cache-too']) {
      api.cluster.addPodDisruptionBudget({ metadata: { name, namespace: 'apps' }, spec: { selector: { matchLabels: { app: 'cache' } }, maxUnavailable: 1 } });
    }
    const handler = handlerFor(api);

    const err = await rejection(handler.handle(surge(), context({ mode: 'pool' })));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toMatch(/^drain of pool eu-west-1a\/m5.large left nodes a pod of which no eviction can move: 5 of 6 nodes drained, \d+ pods evicted; nodes_left=1 \(pool-2\): pool-2: evicting pod apps\/cache-0: .*more than one PodDisruptionBudget/);
    for (const name of POOL.filter((n) => n !== 'pool-2')) expect(api.cluster.pods(name).map((p) => p.metadata.name)).toEqual([`proxy-${name}`]);
    expect(api.cluster.pods('pool-2').map((p) => p.metadata.name)).toContain('cache-0');
    expect(cordoned(api, 'pool-2')).toEqual(CORDONED);

    // With time running out on another node as well, the call is retryable, and says which node no retry mends.
    holdOn(api, 'pool-4');
    const late = await rejection(handlerFor(api, { replyMarginMs: 200 }).handle(surge(), context({ mode: 'pool', maxUnavailable: '6' }, 1_500)));
    expect(late).toBeInstanceOf(DrainIncompleteError);
    expect(late.message).toMatch(/nodes_left=2 \(pool-2, pool-4\); of those, held by a pod no eviction can move: pool-2: evicting pod apps\/cache-0/);
  });

  it('a node an interruption notice drained meanwhile stays cordoned when the surge resolves: its instance is going away', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const handler = handlerFor(api, { replyMarginMs: 200 });
    const notice = (name: string): CloudEvent => ({ ...surge({ node: name }), id: `notice-${name}`, type: 'aws.ec2.spot-interruption' });

    // A drain in progress, held at pool-1: pool-3's instance gets its notice, and the per-instance drain empties it.
    const draining = handler.handle(surge(), context({ mode: 'pool' }));
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    expect(await handler.handle(notice('pool-3'), context({}))).toMatchObject({ attributes: { node: 'pool-3', pods_evicted: '3', pods_remaining: '0' } });
    await handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    expect((await draining).message).toMatch(/uncordoned 5 \(pool-1, pool-2, pool-4, pool-5, pool-6\)$/);
    expect(cordoned(api, 'pool-3')).toEqual(CORDONED);

    // A drain that ran out of time, then a notice for one of the nodes it left: the resolution leaves that one too.
    await rejection(handler.handle(surge(undefined, TIME + 120_000), context({ mode: 'pool' }, 2_000)));
    expect(await handler.handle(notice('pool-4'), context({}))).toMatchObject({ attributes: { node: 'pool-4', pods_remaining: '0' } });
    const undo = await handler.handle(resolution(TIME + 180_000), context({ mode: 'pool' }));
    expect(undo.message).toMatch(/uncordoned 4 nodes an earlier drain of the pool left cordoned \(pool-1, pool-2, pool-5, pool-6\)$/);
    expect(cordoned(api, 'pool-4')).toEqual(CORDONED);
  });

  it('keeps a cordon someone else made between the listing of the pool and its cordon (a 409 and a re-read) when the surge resolves', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const handler = handlerFor(api);
    const patch = held(cleanups);
    api.failNext(1, { effect: 'delay', until: patch.until, method: 'PATCH', path: /^\/api\/v1\/nodes\/pool-3$/ });

    const draining = handler.handle(surge(), context({ mode: 'pool' }));
    await vi.waitFor(() => expect(poolListings(api)).toHaveLength(1), { timeout: 10_000, interval: 10 });
    // An operator cordons pool-3 after the drain listed it: the drain's patch carries the old resourceVersion.
    api.cluster.patchNode('pool-3', 'application/merge-patch+json', { spec: { unschedulable: true } });
    patch.open();
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    expect(patchesOf(api, 'pool-3').map((r) => r.code)).toEqual([409, 200]);
    await handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    await draining;
    expect(cordoned(api, 'pool-3')).toEqual({ unschedulable: true, tainted: false, marked: false });
  });

  it('does not cordon a node deleted and created anew under its name between the listing of the pool and its cordon (a 409 and a re-read)', async () => {
    const api = await startCluster({ secondWebPod: false });
    const handler = handlerFor(api, { watchCache: false });
    const patch = held(cleanups);
    api.failNext(1, { effect: 'delay', until: patch.until, method: 'PATCH', path: /^\/api\/v1\/nodes\/pool-3$/ });

    const draining = handler.handle(surge(), context({ mode: 'pool', maxUnavailable: '3' }));
    await vi.waitFor(() => expect(poolListings(api)).toHaveLength(1), { timeout: 10_000, interval: 10 });
    // pool-3's instance is reclaimed, and a new one joins under its name: the drain's patch carries the old node's resourceVersion.
    api.cluster.deleteNode('pool-3');
    api.cluster.addNode(node('pool-3', ZONE, TYPE));
    patch.open();

    expect((await draining).attributes).toMatchObject({ nodes_selected: '6', nodes_drained: '6' });
    expect(patchesOf(api, 'pool-3').map((r) => r.code)).toEqual([409]);
    expect(cordoned(api, 'pool-3')).toEqual(UNCORDONED);
  });

  it('remembers which node object a pool drain cordoned: a name the cloud reused is undone as the new node was, and a new node under it that the drain did not cordon is left alone', async () => {
    const api = await startCluster({ secondWebPod: false });
    holdOn(api, 'pool-1');
    // pool-5 cordoned by an operator before: its marks are undone, its cordon kept.
    api.cluster.patchNode('pool-5', 'application/merge-patch+json', { spec: { unschedulable: true } });
    const clock = manualClock();
    const handler = handlerFor(api, { clock, replyMarginMs: 200 });
    const until = (ms: number): HandleContext => ({ ...context({ mode: 'pool' }), deadline: new Date(clock.now() + ms) });
    const dbRefusals = (): number => api.cluster.evictions().filter((e) => e.name === 'db-0' && e.code === 429).length;
    // A drain held at pool-1 until its deadline: the others stay cordoned, remembered for the resolution.
    const outOfTime = async (time: number): Promise<void> => {
      const before = dbRefusals();
      const draining = rejection(handler.handle(surge(undefined, time), until(10_000)));
      await vi.waitFor(() => expect(dbRefusals()).toBeGreaterThan(before), { timeout: 10_000, interval: 10 });
      clock.advance(10_000);
      expect(await draining).toBeInstanceOf(DrainIncompleteError);
    };
    const marks = { metadata: { labels: { [MARK]: 'true' } }, spec: { unschedulable: true, taints: [{ key: MARK, value: 'true', effect: 'NoSchedule' as const }] } };

    await outOfTime(TIME);
    // Both instances reclaimed; new ones join under the same names. The new pool-4 is drained for a notice of its own
    // by another replica's plugin (this one does not hear of it); the new pool-5 is schedulable.
    for (const name of ['pool-4', 'pool-5']) {
      api.cluster.deleteNode(name);
      api.cluster.addNode(node(name, ZONE, TYPE));
    }
    api.cluster.patchNode('pool-4', 'application/merge-patch+json', marks);
    // The next surge's drain cordons the new pool-5, and runs out of time too.
    await outOfTime(TIME + 1);

    await handler.handle(resolution(TIME + 60_000), until(10_000));
    expect(cordoned(api, 'pool-5')).toEqual(UNCORDONED);
    expect(cordoned(api, 'pool-4')).toEqual(CORDONED);
    for (const name of ['pool-2', 'pool-3', 'pool-6']) expect(cordoned(api, name)).toEqual(UNCORDONED);
  });

  it('undoes a cordon whose answer was lost (applied, then tried again) when the surge resolves', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const handler = handlerFor(api);
    api.failNext(1, { effect: 'lose-answer', method: 'PATCH', path: /^\/api\/v1\/nodes\/pool-3$/ });

    const draining = handler.handle(surge(), context({ mode: 'pool' }));
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    // The one patch applied, its answer lost; the retry read the node cordoned already.
    expect(patchesOf(api, 'pool-3')).toHaveLength(1);
    await handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    expect((await draining).message).toMatch(/uncordoned 6 \(pool-1, pool-2, pool-3, pool-4, pool-5, pool-6\)$/);
    expect(cordoned(api, 'pool-3')).toEqual(UNCORDONED);
  });

  it('a resolution with more time than the drain it stops gives that drain\'s uncordons its own time', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const logger = recordingLogger();
    const handler = handlerFor(api, { replyMarginMs: 200, logger });

    const surgeDeadline = Date.now() + 2_000;
    const draining = handler.handle(surge(), { ...context({ mode: 'pool' }), deadline: new Date(surgeDeadline) });
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    // pool-2's uncordon is held at the stand-in until the stopped drain's own deadline has passed.
    const uncordon = held(cleanups);
    api.failNext(1, { effect: 'delay', until: uncordon.until, method: 'PATCH', path: /^\/api\/v1\/nodes\/pool-2$/ });
    const stopping = handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(surgeDeadline), { timeout: 10_000, interval: 20 });
    uncordon.open();

    const stop = await stopping;
    expect(stop.message).toMatch(/uncordoned 6 \(pool-1, pool-2, pool-3, pool-4, pool-5, pool-6\)$/);
    expect((await draining).attributes).toMatchObject({ stopped_early: 'true' });
    expect(logger.lines.filter((l) => l.message.startsWith('could not uncordon'))).toEqual([]);
  });

  it('a notice for a node whose uncordon is in flight cordons it again once that uncordon lands: the resolution does not make it schedulable under the drain', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const logger = recordingLogger();
    const clock = jumpableClock();
    const handler = handlerFor(api, { replyMarginMs: 200, logger, clock });
    const notice: CloudEvent = { ...surge({ node: 'pool-4' }), id: 'notice-pool-4', type: 'aws.ec2.spot-interruption' };
    // A drain that runs out of time leaves pool-4 (among others) cordoned, remembered for the resolution.
    await drainUntilDeadline(handler, clock, surge(), api);
    expect(cordoned(api, 'pool-4')).toEqual(CORDONED);

    // The resolution's uncordon of pool-4 has read the node, and its patch is held on the way while pool-4's notice comes.
    let land!: () => void;
    api.failNext(1, { effect: 'delay', until: new Promise<void>((resolve) => (land = resolve)), method: 'PATCH', path: /\/nodes\/pool-4$/ });
    const before = api.requests.length;
    const undo = handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    await vi.waitFor(() => expect(api.requests.slice(before).some((r) => r.method === 'GET' && r.path === '/api/v1/nodes/pool-4')).toBe(true), { timeout: 10_000, interval: 20 });
    const drained = handler.handle(notice, context({}));
    // Either the notice's drain ends with pool-4 as it found it, or it waits for the uncordon in flight: then the patch lands.
    const waiting = vi.waitFor(() => expect(logger.lines.some((l) => l.fields?.['node'] === 'pool-4' && /uncordon/.test(l.message))).toBe(true), { timeout: 10_000, interval: 20 });
    await Promise.race([drained.catch(() => {}), waiting.catch(() => {})]);
    land();
    expect(await drained).toMatchObject({ attributes: { node: 'pool-4', pods_remaining: '0' } });
    await undo;
    expect(cordoned(api, 'pool-4')).toEqual(CORDONED);
  });

  it("a notice for a node a resolution has just uncordoned cordons it again, though the node cache has not seen the uncordon yet", async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const clock = jumpableClock();
    const handler = handlerFor(api, { replyMarginMs: 200, clock });
    handler.start();
    const notice: CloudEvent = { ...surge({ node: 'pool-4' }), id: 'notice-pool-4', type: 'aws.ec2.spot-interruption' };
    // A drain that runs out of time leaves pool-4 cordoned; the node cache sees that meanwhile.
    await drainUntilDeadline(handler, clock, surge(), api);
    // The watches fall silent (a dropped connection neither end hears of): the cache still has pool-4 cordoned after the resolution.
    api.silenceOpenWatches();
    await handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    expect(cordoned(api, 'pool-4')).toEqual(UNCORDONED);
    // The evicted pods are not seen gone either (the pod cache is silent too): the drain ends at its deadline, which is not
    // what is tested, so that deadline comes once the notice has cordoned pool-4.
    const draining = handler.handle(notice, { ...context({}), deadline: new Date(clock.now() + 1_000) }).catch(() => {});
    await vi.waitFor(() => expect(cordoned(api, 'pool-4')).toEqual(CORDONED), { timeout: 10_000, interval: 20 });
    clock.jump(1_000);
    await draining;
    expect(cordoned(api, 'pool-4')).toEqual(CORDONED);
  });

  it('a resolution while a retry is still listing undoes the cordons the earlier drain left, keeping the ones it did not make', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    // pool-5 cordoned by someone else before; pool-6 marked by an earlier drain this process does not remember.
    api.cluster.patchNode('pool-5', 'application/merge-patch+json', { spec: { unschedulable: true } });
    api.cluster.patchNode('pool-6', 'application/merge-patch+json', {
      metadata: { labels: { [MARK]: 'true' } },
      spec: { unschedulable: true, taints: [{ key: MARK, value: 'true', effect: 'NoSchedule' }] },
    });
    const logger = recordingLogger();
    const handler = handlerFor(api, { watchCache: false, replyMarginMs: 200, logger });
    await rejection(handler.handle(surge(), context({ mode: 'pool' }, 2_000)));

    const listing = held(cleanups);
    api.failNext(1, { effect: 'delay', until: listing.until, method: 'GET', path: /^\/api\/v1\/nodes$/ });
    // pool-2's uncordon is refused once: it stays cordoned, and the next resolution undoes it.
    api.failNext(1, { code: 403, method: 'PATCH', path: /^\/api\/v1\/nodes\/pool-2$/ });
    const retry = handler.handle(surge(undefined, TIME + 1), context({ mode: 'pool' }));
    // Its listing is held at the stand-in: the resolution comes meanwhile.
    const stopping = handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    listing.open();

    const [result, stop] = await Promise.all([retry, stopping]);
    expect(result.attributes).toMatchObject({ nodes_drained: '0', nodes_left: '6', stopped_early: 'true' });
    expect(stop.message).toMatch(/uncordoned 4 \(pool-1, pool-3, pool-4, pool-5\)$/);
    for (const name of ['pool-1', 'pool-3', 'pool-4']) expect(cordoned(api, name)).toEqual(UNCORDONED);
    expect(cordoned(api, 'pool-2')).toEqual(CORDONED);
    expect(cordoned(api, 'pool-5')).toEqual({ unschedulable: true, tainted: false, marked: false });
    expect(cordoned(api, 'pool-6')).toEqual(CORDONED);
    expect(logger.lines).toContainEqual({ level: 'warn', message: 'could not uncordon node after its pool drain was stopped', fields: expect.objectContaining({ node: 'pool-2' }) });

    const undo = await handler.handle(resolution(TIME + 120_000), context({ mode: 'pool' }));
    expect(undo.message).toBe(`no pool drain in progress for pool ${POOL_NAME}; uncordoned 1 nodes an earlier drain of the pool left cordoned (pool-2)`);
    expect(cordoned(api, 'pool-2')).toEqual(UNCORDONED);
    expect(logger.lines).toContainEqual({ level: 'info', message: 'uncordoned the nodes an earlier pool drain left', fields: { pool: POOL_NAME, uncordoned: ['pool-2'] } });
  });
});

describe('pool mode: the resolution marker', () => {
  it("a retry stopped by a resolution taken here while it reads the pool's marker answers 'stopped early', naming the nodes it uncordoned, not 'resolved at ...: nothing drained'", async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const clock = jumpableClock();
    const handler = handlerFor(api, { replyMarginMs: 200, clock });
    // The first try runs out of time with the pool cordoned.
    await drainUntilDeadline(handler, clock, surge(), api);
    expectPool(api, CORDONED);
    // core's retry lists the pool, then its read of the marker is held at the stand-in.
    const read = held(cleanups);
    const reading = api.failNext(1, { effect: 'delay', until: read.until, method: 'GET', path: /\/leases\// });
    const listings = poolListings(api).length;
    const retry = handler.handle(surge(), { ...context({ mode: 'pool' }), attempt: 2 });
    await vi.waitFor(() => expect(poolListings(api).length > listings && reading.hits === 1).toBe(true), { timeout: 10_000, interval: 5 });
    // The resolution comes to this process meanwhile: it stops the retry's drain and writes the marker.
    const stopping = handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    await vi.waitFor(() => expect(api.requests.some((r) => r.method === 'POST' && r.path.endsWith('/leases') && r.code === 201)).toBe(true), { timeout: 10_000, interval: 5 });
    // The held read now finds the marker this process wrote: a resolution taken here, not one learnt from the marker.
    read.open();

    const result = await retry;
    // Before 7c4866b, the retry answered "resolved at 2026-11-30T02:01:00.000Z: nothing drained", though it uncordoned the pool.
    expect(result.message).toBe(`drain of pool ${POOL_NAME} stopped early (the surge resolved): 0 of 6 nodes drained, 0 pods evicted; uncordoned 6 (${POOL.join(', ')})`);
    expect(result.attributes).toMatchObject({ nodes_selected: '6', nodes_left: '6', stopped_early: 'true' });
    expect((await stopping).message).toMatch(/^stopped the drain of pool eu-west-1a\/m5\.large: drain of pool .* stopped early/);
    expectPool(api, UNCORDONED);
  });

  it('a resolution that stops the drain here but cannot write the marker (PERMISSION_DENIED) fails saying the stop was made and what it uncordoned', async () => {
    const api = await startCluster();
    holdOn(api, 'pool-1');
    const handler = handlerFor(api, { replyMarginMs: 200 });
    const draining = handler.handle(surge(), context({ mode: 'pool' }, 20_000));
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });

    api.failNext(1, { code: 403, path: /\/leases/ });
    const err = await rejection(handler.handle(resolution(TIME + 60_000), context({ mode: 'pool' })));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.message).toMatch(/recording the resolution of pool eu-west-1a\/m5\.large \(Lease default\/hollowtrees-pool-[0-9a-f]{32}\)/);
    // Before, the error said nothing of the stop it had made: an operator could not tell the pool was uncordoned.
    expect(err.message).toMatch(/; stopped the drain of pool eu-west-1a\/m5\.large: drain of pool .* stopped early \(the surge resolved\): .*; uncordoned 6 \(pool-1, pool-2, pool-3, pool-4, pool-5, pool-6\)$/);
    expect((await draining).attributes).toMatchObject({ stopped_early: 'true' });
    expectPool(api, UNCORDONED);
  });

  it("a resolution of a pool with no node records it in the marker: a slow surge in another process that lists the pool once nodes have joined it drains nothing", async () => {
    const api = await startCluster();
    const EMPTY_ZONE = 'eu-west-1c';
    const labels = { availability_zone: EMPTY_ZONE, instance_type: TYPE };
    // Process B's surge lists the pool (no node yet), its listing held at the stand-in.
    const listing = held(cleanups);
    const listed = api.failNext(1, { effect: 'delay', until: listing.until, method: 'GET', path: /^\/api\/v1\/nodes$/, query: /labelSelector=/ });
    const slow = handlerFor(api, { replyMarginMs: 200 }).handle(surge(labels), context({ mode: 'pool' }, 20_000));
    await vi.waitFor(() => expect(listed.hits).toBe(1), { timeout: 10_000, interval: 5 });
    // Process A takes the surge's resolution: the pool has no node.
    expect(await handlerFor(api, { replyMarginMs: 200 }).handle(resolution(TIME + 60_000, labels), context({ mode: 'pool' }))).toMatchObject({ status: 'skipped' });
    // Nodes join the pool before B's listing is answered.
    for (const name of ['late-1', 'late-2']) {
      api.cluster.addNode(node(name, EMPTY_ZONE, TYPE));
      api.cluster.addPod(pod(`api-${name}`, name));
    }
    listing.open();

    // Before, A wrote no marker: B cordoned both nodes for the resolved surge, drained them, and nothing was left to undo it.
    expect(await slow).toMatchObject({ status: 'skipped', attributes: { nodes_drained: '0' } });
    for (const name of ['late-1', 'late-2']) expect(cordoned(api, name)).toEqual(UNCORDONED);
    expect(api.cluster.evictions()).toEqual([]);
  });

  it("a newer surge that joined a drain whose cordons another plugin process's resolution of the older surge undid drains the pool anew, not answered ok with the pool uncordoned", async () => {
    // One web pod on pool-1: db-0's retries are the only ones that check pool-1. With a second, refused by the web
    // budget, one check was held and the other retries ran on: one of them could see pool-1 still cordoned and evict
    // db-0 once db-1 came (nodes_drained 1).
    const api = await startCluster({ secondWebPod: false });
    holdOn(api, 'pool-1');
    // Process A drains the surge at TIME, held at pool-1; its next check of pool-1 (before a budget retry) is held at the stand-in.
    const a = handlerFor(api, { replyMarginMs: 200 });
    const older = a.handle(surge(), context({ mode: 'pool' }, 20_000));
    await vi.waitFor(() => expect(dbRefused(api)).toBe(true), { timeout: 10_000, interval: 20 });
    const check = held(cleanups);
    const checking = api.failNext(1, { effect: 'delay', until: check.until, method: 'GET', path: /^\/api\/v1\/nodes\/pool-1$/ });
    // The check itself at the stand-in (not just any request in flight): else B's read of pool-1 could be the one held.
    await vi.waitFor(() => expect(checking.hits).toBe(1), { timeout: 5_000, interval: 5 });
    // Process B takes the older surge's resolution (TIME + 1m) and uncordons the pool.
    expect(await handlerFor(api, { replyMarginMs: 200 }).handle(resolution(TIME + 60_000), context({ mode: 'pool' }))).toMatchObject({ attributes: { nodes_uncordoned: '6' } });
    expectPool(api, UNCORDONED);
    // The price surges again (TIME + 2m): the newer surge reaches A and joins its drain, which has not seen the uncordons yet.
    const newer = a.handle(surge(undefined, TIME + 120_000), context({ mode: 'pool' }, 20_000));
    // The newer surge call has joined the drain (no call of its own comes before) by the next turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    // db-0's budget lets it go now (a second replica elsewhere).
    api.cluster.addPod(pod('db-1', 'other-type', { labels: { app: 'db' }, kind: 'StatefulSet' }));
    check.open();

    // The older surge's drain ends with every node released: their cordons were undone by that surge's resolution.
    expect((await older).attributes).toMatchObject({ nodes_drained: '0', nodes_released: '6' });
    // Before, the newer surge took that answer (ok, "6 nodes ... not drained"), and the pool stayed uncordoned during its surge.
    const result = await newer;
    expect(result.attributes).toMatchObject({ nodes_selected: '6', nodes_drained: '6', nodes_left: '0', nodes_released: '0' });
    expectPool(api, CORDONED);
    for (const name of POOL) expect(recordedSurgeAt(api, name)).toBe(new Date(TIME + 120_000).toISOString());
  });

  it("a newer surge that joins while a cordon is on its way, whose node another process's resolution of the older surge uncordons before the newer surge is recorded on it, gets that node cordoned anew", async () => {
    const api = await startCluster();
    const a = handlerFor(api, { replyMarginMs: 200 });
    // Process A's cordon of pool-6 (for the surge at TIME) is on its way while the rest of the pool is cordoned.
    const cordon = held(cleanups);
    api.failNext(1, { effect: 'delay', until: cordon.until, method: 'PATCH', path: /^\/api\/v1\/nodes\/pool-6$/ });
    const older = a.handle(surge(), context({ mode: 'pool', maxUnavailable: '6' }, 20_000));
    await vi.waitFor(() => POOL.slice(0, 5).forEach((name) => expect(cordoned(api, name)).toEqual(CORDONED)), { timeout: 10_000, interval: 20 });
    // The newer surge (TIME + 2m) joins: pool-1 to pool-5 record it.
    const newer = a.handle(surge(undefined, TIME + 120_000), context({ mode: 'pool', maxUnavailable: '6' }, 20_000));
    const newerAt = new Date(TIME + 120_000).toISOString();
    await vi.waitFor(() => POOL.slice(0, 5).forEach((name) => expect(recordedSurgeAt(api, name)).toBe(newerAt)), { timeout: 5_000, interval: 10 });
    // pool-6's cordon lands (recording the older surge); A's read of it, to record the newer surge, is held.
    const read = held(cleanups);
    const reading = api.failNext(1, { effect: 'delay', until: read.until, method: 'GET', path: /^\/api\/v1\/nodes\/pool-6$/ });
    cordon.open();
    await vi.waitFor(() => expect(cordoned(api, 'pool-6')).toEqual(CORDONED), { timeout: 5_000, interval: 10 });
    await vi.waitFor(() => expect(reading.hits).toBe(1), { timeout: 5_000, interval: 5 });
    // Process B takes the older surge's resolution (TIME + 1m): it uncordons pool-6 and leaves the nodes held for the newer surge.
    await handlerFor(api, { replyMarginMs: 200 }).handle(resolution(TIME + 60_000), context({ mode: 'pool' }));
    expect(cordoned(api, 'pool-6')).toEqual(UNCORDONED);
    read.open();

    expect((await older).attributes).toMatchObject({ nodes_released: '1' });
    // Before, A remembered pool-6's cordon as held for the newer surge though it was undone: the newer surge took the
    // drain's answer, and pool-6 stayed uncordoned through it.
    expect((await newer).attributes).toMatchObject({ nodes_selected: '6', nodes_drained: '6', nodes_released: '0' });
    expectPool(api, CORDONED);
    expect(recordedSurgeAt(api, 'pool-6')).toBe(newerAt);
  });
});
