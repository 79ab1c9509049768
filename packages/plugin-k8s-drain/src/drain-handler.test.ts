import { Code, PluginClient, PluginError, serve, type CloudEvent, type HandleContext } from '@hollowtrees/grpcplugin';
import { rejectionOf, startKubeApiServer, type KubeApiServer, type KubeApiServerOptions, type KubePod } from '@hollowtrees/testkit';
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it, vi } from 'vitest';
import { createDrainHandler, DrainHandler } from './drain-handler.js';
import { DrainIncompleteError } from './drain-incomplete-error.js';
import { createKubeApi, type KubeApi } from './kube-api.js';
import { jsonLogger, type PluginLogger as Logger } from '@hollowtrees/grpcplugin';
import { jumpableClock, manualClock, recordingLogger, type JumpableClock } from '@hollowtrees/grpcplugin/testing';
import type { DrainOptions } from './options.js';
import { cleanupsAfterEach, held } from './test-support/kube.js';

const cleanups = cleanupsAfterEach();

const silent: Logger = jsonLogger({ service: 'test', level: 'silent' });

/** A stand-in with two nodes: node-a (i-0aaa) to drain, node-b (i-0bbb) for the replacements. */
async function startCluster(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const api = await startKubeApiServer({ msPerGraceSecond: 5, ...options });
  cleanups.push(() => api.close());
  api.cluster.addNode({ metadata: { name: 'node-a', labels: { 'kubernetes.io/hostname': 'node-a' } }, spec: { providerID: 'aws:///eu-west-1a/i-0aaa' } });
  api.cluster.addNode({ metadata: { name: 'node-b' }, spec: { providerID: 'aws:///eu-west-1b/i-0bbb' } });
  return api;
}

/** The real client, pointed at the stand-in (plain HTTP needs skipTLSVerify). */
function handlerFor(api: KubeApiServer, options: DrainOptions = {}): DrainHandler {
  const kc = new KubeConfig();
  kc.loadFromOptions(api.kubeConfigOptions());
  const handler = createDrainHandler(kc, { backoff: () => 10, deletionPollMs: 20, logger: silent, ...options });
  // Before the stand-in closes: the pod watch is a connection to it.
  cleanups.push(() => handler.close());
  return handler;
}

const event = (labels: Record<string, string>): CloudEvent => ({
  id: 'alert-1',
  source: 'test',
  specversion: '1.0',
  type: 'prometheus.server.alert.SpotTerminating',
  data: { labels },
});

const context = (timeoutMs = 10_000): HandleContext => ({
  flow: 'spot',
  attempt: 1,
  config: {},
  deadline: new Date(Date.now() + timeoutMs),
  signal: new AbortController().signal,
});

const owner = (kind: string, name: string) => [{ apiVersion: 'apps/v1', kind, name, uid: `${kind}-${name}`, controller: true }];

function pod(name: string, extra: { labels?: Record<string, string>; owner?: string[]; grace?: number; emptyDir?: boolean; annotations?: Record<string, string>; phase?: 'Succeeded' } = {}): KubePod {
  return {
    metadata: {
      name,
      namespace: 'apps',
      labels: extra.labels,
      annotations: extra.annotations,
      ownerReferences: extra.owner ? owner(extra.owner[0]!, extra.owner[1]!) : undefined,
    },
    spec: {
      nodeName: 'node-a',
      terminationGracePeriodSeconds: extra.grace,
      volumes: extra.emptyDir ? [{ name: 'scratch', emptyDir: {} }] : [],
    },
    ...(extra.phase ? { status: { phase: extra.phase } } : {}),
  };
}

const rejection = (p: Promise<unknown>): Promise<PluginError> => rejectionOf(p, PluginError);

/**
 * Moves `clock` `ms` ahead once `ready` holds (what the test checks has happened: an eviction made or refused), so a
 * call's deadline whose coming is not what is tested comes then instead of being waited out.
 */
async function jumpWhen(clock: JumpableClock, ms: number, ready: () => boolean): Promise<void> {
  await vi.waitFor(() => expect(ready()).toBe(true), { timeout: 10_000, interval: 10 });
  clock.jump(ms);
}

const names = (pods: KubePod[]): string[] => pods.map((p) => p.metadata.name).sort();
const writes = (api: KubeApiServer) => api.requests.filter((r) => r.method !== 'GET');

describe('DrainHandler', () => {
  it('drains a node with 30 pods: skips DaemonSet and mirror pods, evicts emptyDir pods, waits on the PodDisruptionBudget', async () => {
    const api = await startCluster();
    const daemonSets = ['kube-proxy-a', 'aws-node-a', 'node-exporter-a'];
    for (const name of daemonSets) api.cluster.addPod(pod(name, { owner: ['DaemonSet', name.slice(0, -2)] }));
    api.cluster.addPod(pod('etcd-node-a', { annotations: { 'kubernetes.io/config.mirror': 'abc' }, owner: ['Node', 'node-a'] }));
    for (let i = 0; i < 4; i++) api.cluster.addPod(pod(`cache-${i}`, { owner: ['ReplicaSet', 'cache'], emptyDir: true }));
    for (let i = 0; i < 8; i++) api.cluster.addPod(pod(`web-${i}`, { owner: ['ReplicaSet', 'web'], labels: { app: 'web' }, grace: 15 }));
    for (let i = 0; i < 12; i++) api.cluster.addPod(pod(`api-${i}`, { owner: ['ReplicaSet', 'api'], grace: 60 }));
    for (let i = 0; i < 2; i++) api.cluster.addPod(pod(`job-${i}`, { owner: ['Job', 'report'], phase: 'Succeeded' }));
    api.cluster.addPodDisruptionBudget({ metadata: { name: 'web', namespace: 'apps' }, spec: { selector: { matchLabels: { app: 'web' } }, maxUnavailable: 1 } });
    expect(api.cluster.pods('node-a')).toHaveLength(30);

    const handler = handlerFor(api, { gracePeriodSeconds: 20 });
    const result = await handler.handle(event({ node: 'node-a' }), context());

    expect(result.status).toBeUndefined();
    expect(result.attributes).toMatchObject({ node: 'node-a', pods_evicted: '26', pods_remaining: '0' });
    expect(Number(result.attributes?.duration_ms)).toBeGreaterThan(0);
    const node = api.cluster.node('node-a')!;
    expect(node.spec?.unschedulable).toBe(true);
    expect(node.spec?.taints).toEqual([{ key: 'hollowtrees.io/spot-termination', value: 'true', effect: 'NoSchedule' }]);
    expect(node.metadata.labels).toMatchObject({ 'hollowtrees.io/spot-termination': 'true', 'kubernetes.io/hostname': 'node-a' });
    // Left behind: what a drain must not touch. Everything else is gone (waitForDeletion).
    expect(names(api.cluster.pods('node-a'))).toEqual([...daemonSets, 'etcd-node-a'].sort());
    // Replacements of the managed pods run on node-b; finished Job pods are not replaced.
    expect(api.cluster.pods('node-b')).toHaveLength(24);

    const evictions = api.cluster.evictions();
    const evicted = evictions.filter((e) => e.code === 201);
    expect(evicted).toHaveLength(26);
    expect(evictions.every((e) => !daemonSets.includes(e.name) && e.name !== 'etcd-node-a')).toBe(true);
    // The budget refused some evictions, and the handler retried them until it allowed each.
    expect(evictions.filter((e) => e.code === 429).every((e) => e.name.startsWith('web-'))).toBe(true);
    expect(evictions.some((e) => e.code === 429)).toBe(true);
    // The pod's own grace period, capped at 20 s.
    expect(new Set(evicted.filter((e) => e.name.startsWith('web-')).map((e) => e.gracePeriodSeconds))).toEqual(new Set([15]));
    expect(new Set(evicted.filter((e) => e.name.startsWith('api-')).map((e) => e.gracePeriodSeconds))).toEqual(new Set([20]));
    // Events do not hold up the drain: they may still be on their way when it answers.
    await handler.eventsRecorded();
    expect(api.cluster.events().map((e) => [e.reason, e.type, e.involvedObject.name])).toEqual([
      ['SpotInterruption', 'Warning', 'node-a'],
      ['CordonAndDrain', 'Normal', 'node-a'],
    ]);
    // Each patch was a merge patch, sent once.
    expect(api.requests.filter((r) => r.method === 'PATCH').map((r) => r.contentType)).toEqual(['application/merge-patch+json']);
  });

  it('returns before the deadline with pods_remaining and DEADLINE_EXCEEDED when a budget never allows', async () => {
    const api = await startCluster();
    for (let i = 0; i < 3; i++) api.cluster.addPod(pod(`db-${i}`, { owner: ['StatefulSet', 'db'], labels: { app: 'db' } }));
    for (let i = 0; i < 2; i++) api.cluster.addPod(pod(`api-${i}`, { owner: ['ReplicaSet', 'api'] }));
    api.cluster.addPodDisruptionBudget({ metadata: { name: 'db', namespace: 'apps' }, spec: { selector: { matchLabels: { app: 'db' } }, minAvailable: 3 } });
    const handler = handlerFor(api, { replyMarginMs: 300 });

    const started = Date.now();
    const err = await rejection(handler.handle(event({ node: 'node-a' }), context(1_500)));
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(err).toBeInstanceOf(DrainIncompleteError);
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect((err as DrainIncompleteError).attributes).toMatchObject({ node: 'node-a', pods_evicted: '2', pods_remaining: '3' });
    // Which pod, and which budget holds it: the budget's name is only in the 429's cause.
    expect(err.message).toMatch(/; last reason: evicting pod apps\/db-\d: Cannot evict pod as it would violate the pod's disruption budget\. The disruption budget db needs 3 healthy pods and has 3 currently$/);
    expect(names(api.cluster.pods('node-a'))).toEqual(['db-0', 'db-1', 'db-2']);
    await handler.eventsRecorded();
    expect(api.cluster.events().map((e) => e.reason)).toEqual(['SpotInterruption', 'DrainFailed']);

    // Over real gRPC: the answer beats core's deadline, and the message carries the counts.
    const server = await serve(0, handler, { host: '127.0.0.1' });
    const client = new PluginClient(`127.0.0.1:${server.port}`);
    cleanups.push(() => server.close(), () => client.close());
    const remote = await rejection(client.handle(event({ node: 'node-a' }), { flow: 'spot', timeoutMs: 1_500 }));
    expect(remote.code).toBe(Code.DeadlineExceeded);
    expect(remote.message).toMatch(/pods_remaining=3 \(apps\/db-0, apps\/db-1, apps\/db-2\).*disruption budget.*The disruption budget db needs 3 healthy pods/);
  });

  it('fails with FAILED_PRECONDITION (permanent, not retried) when the deadline has already passed at entry, having still cordoned the node', async () => {
    const api = await startCluster();
    api.cluster.addPod(pod('api-0', { owner: ['ReplicaSet', 'api'] }));
    const handler = handlerFor(api);
    const passed = new Date(Date.now() - 60_000).toISOString();

    const err = await rejection(handler.handle(event({ node: 'node-a', termination_time: passed }), context()));
    expect(err).not.toBeInstanceOf(DrainIncompleteError);
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/^no time left to drain .*node-a.*: its deadline .* has passed; node node-a cordoned, no pod evicted$/);
    // No time to drain, but a cordon takes milliseconds and keeps new pods off the instance going away: no eviction.
    expect(api.cluster.node('node-a')?.spec?.unschedulable).toBe(true);
    expect(api.cluster.evictions()).toHaveLength(0);

    // The same over real gRPC, for the node already cordoned.
    const server = await serve(0, handler, { host: '127.0.0.1' });
    const client = new PluginClient(`127.0.0.1:${server.port}`);
    cleanups.push(() => server.close(), () => client.close());
    const remote = await rejection(client.handle(event({ node: 'node-a', termination_time: passed }), { flow: 'spot', timeoutMs: 5_000 }));
    expect(remote.code).toBe(Code.FailedPrecondition);
    expect(remote.message).toMatch(/no time left to drain .*; node node-a was cordoned already, no pod evicted$/);
    expect(api.cluster.evictions()).toHaveLength(0);
  });

  it('a drain that came too late for a node this cluster lacks, or whose cordon fails, still answers FAILED_PRECONDITION, saying so', async () => {
    const api = await startCluster();
    const handler = handlerFor(api);
    const passed = new Date(Date.now() - 60_000).toISOString();
    const missing = await rejection(handler.handle(event({ node: 'node-x', termination_time: passed }), context()));
    expect([missing.code, missing.message]).toEqual([Code.FailedPrecondition, expect.stringMatching(/; the node is not in this cluster$/) as string]);
    api.failNext(1, { method: 'PATCH', code: 403 });
    const refused = await rejection(handler.handle(event({ node: 'node-a', termination_time: passed }), context()));
    expect([refused.code, refused.message]).toEqual([Code.FailedPrecondition, expect.stringMatching(/has passed; cordoning it failed too: .+/) as string]);
    expect(api.cluster.node('node-a')?.spec?.unschedulable).toBeFalsy();
  });

  it('skips a resolution routed to a per-instance drain (a flow taking *.resolved events): it cordons and evicts nothing', async () => {
    const api = await startCluster();
    api.cluster.addPod(pod('api-0', { owner: ['ReplicaSet', 'api'] }));
    const handler = handlerFor(api);
    const resolved = { ...event({ node: 'node-a' }), type: 'prometheus.server.alert.SpotTerminating.resolved' };
    expect(await handler.handle(resolved, context())).toMatchObject({ status: 'skipped', message: expect.stringMatching(/ends an interruption: nothing to drain/) as string });
    expect(api.cluster.node('node-a')?.spec?.unschedulable).toBeFalsy();
    expect(writes(api)).toHaveLength(0);
  });

  it('is idempotent: a second call for a drained node changes nothing and answers skipped', async () => {
    const api = await startCluster();
    api.cluster.addPod(pod('kube-proxy-a', { owner: ['DaemonSet', 'kube-proxy'] }));
    api.cluster.addPod(pod('api-0', { owner: ['ReplicaSet', 'api'] }));
    const handler = handlerFor(api);
    expect((await handler.handle(event({ node: 'node-a' }), context())).attributes).toMatchObject({ pods_evicted: '1' });
    await handler.eventsRecorded();
    const before = { node: api.cluster.node('node-a'), writes: writes(api).length, events: api.cluster.events().length };

    const asked = api.requests.length;
    const again = await handler.handle(event({ node: 'node-a' }), context());
    // One read of the node, which shows it drained: no pod list, no wait, no eviction, patch or Event. A count, not
    // a time, which a loaded machine stretches.
    expect(api.requests.slice(asked).map((r) => `${r.method} ${r.path}`)).toEqual(['GET /api/v1/nodes/node-a']);
    expect(again).toMatchObject({ status: 'skipped', attributes: { node: 'node-a', pods_evicted: '0', pods_remaining: '0' } });
    expect(api.cluster.node('node-a')).toEqual(before.node);
    expect(writes(api)).toHaveLength(before.writes);
    expect(api.cluster.events()).toHaveLength(before.events);
  });

  it('a drain tried again while the pods its first try evicted still terminate waits for them, and does not answer skipped', async () => {
    const api = await startCluster();
    // 300 s of grace: 1.5 s in the stand-in.
    for (let i = 0; i < 3; i++) api.cluster.addPod(pod(`web-${i}`, { owner: ['ReplicaSet', 'web'], grace: 300 }));
    const first = new AbortController();
    const cut = handlerFor(api).handle(event({ node: 'node-a' }), { ...context(20_000), signal: first.signal }).catch((err: unknown) => err);
    await vi.waitFor(() => expect(api.cluster.evictions().filter((e) => e.code === 201)).toHaveLength(3), { timeout: 5_000, interval: 5 });
    // Core gave the first try up (its timeout, a restart of the plugin, a lost connection) and tries again.
    first.abort(new PluginError(Code.Canceled, 'cancelled'));
    await cut;
    const again = await handlerFor(api).handle(event({ node: 'node-a' }), { ...context(20_000), attempt: 2 });
    expect(again.status).not.toBe('skipped');
    expect(again.attributes).toMatchObject({ pods_evicted: '0', pods_remaining: '0' });
    expect(api.cluster.pods('node-a')).toEqual([]);
  });

  it('drains the node it runs on without evicting its own pod (POD_NAMESPACE/POD_NAME), which would stop the drain', async () => {
    const api = await startCluster();
    const own = pod('hollowtrees-7d9f', { owner: ['ReplicaSet', 'hollowtrees'] });
    api.cluster.addPod({ ...own, metadata: { ...own.metadata, namespace: 'hollowtrees' } });
    api.cluster.addPod(pod('api-0', { owner: ['ReplicaSet', 'api'] }));
    const result = await handlerFor(api, { ownPod: { namespace: 'hollowtrees', name: 'hollowtrees-7d9f' } }).handle(event({ node: 'node-a' }), context());
    expect(result.attributes).toMatchObject({ pods_evicted: '1', pods_remaining: '0' });
    expect(api.cluster.evictions().map((e) => e.name)).toEqual(['api-0']);
    expect(api.cluster.pods('node-a').map((p) => `${p.metadata.namespace}/${p.metadata.name}`)).toEqual(['hollowtrees/hollowtrees-7d9f']);
  });

  it('dry-run logs every step and changes nothing', async () => {
    const api = await startCluster();
    api.cluster.addPod(pod('kube-proxy-a', { owner: ['DaemonSet', 'kube-proxy'] }));
    for (let i = 0; i < 3; i++) api.cluster.addPod(pod(`api-${i}`, { owner: ['ReplicaSet', 'api'] }));
    const logger = recordingLogger();
    const before = api.cluster.node('node-a');

    const result = await handlerFor(api, { dryRun: true, logger }).handle(event({ node: 'node-a' }), context());

    expect(result).toMatchObject({ attributes: { node: 'node-a', pods_evicted: '0', pods_remaining: '3', dry_run: 'true' } });
    expect(result.message).toBe('dry run: would cordon node and evict 3 pods from node node-a');
    expect(logger.lines.filter((l) => l.level === 'info' || l.level === 'warn').map((l) => l.message)).toEqual([
      'dry run: would cordon and taint node',
      'dry run: would record a Kubernetes Event',
      'not evicting pod',
      'dry run: would evict pod',
      'dry run: would evict pod',
      'dry run: would evict pod',
    ]);
    expect(writes(api)).toEqual([]);
    expect(api.cluster.node('node-a')).toEqual(before);
    expect(api.cluster.pods('node-a')).toHaveLength(4);
  });

  it('finds the node by instance id through spec.providerID', async () => {
    const api = await startCluster();
    api.cluster.addPod({ ...pod('api-0', { owner: ['ReplicaSet', 'api'] }), spec: { nodeName: 'node-b' } });

    const result = await handlerFor(api).handle(event({ instance_id: 'i-0bbb' }), context());

    expect(result.attributes).toMatchObject({ node: 'node-b', pods_evicted: '1' });
    expect(api.cluster.node('node-b')?.spec?.unschedulable).toBe(true);
    expect(api.cluster.node('node-a')?.spec?.unschedulable).toBeUndefined();
  });

  it('answers NOT_FOUND for a node the cluster lacks, or skipped when configured to', async () => {
    const api = await startCluster();
    const notFound = await rejection(handlerFor(api).handle(event({ node: 'node-z' }), context()));
    expect(notFound.code).toBe(Code.NotFound);
    expect(notFound.message).toMatch(/node "node-z" does not exist/);
    const byInstance = await rejection(handlerFor(api).handle(event({ instance_id: 'i-0zzz' }), context()));
    expect(byInstance.message).toMatch(/no node has instance i-0zzz/);

    const skipped = await handlerFor(api, { nodeNotFound: 'skip' }).handle(event({ instance_id: 'i-0zzz' }), context());
    expect(skipped).toMatchObject({ status: 'skipped' });
    expect(writes(api)).toEqual([]);
  });

  it('answers a node deleted between its look-up and its cordon (its instance gone) as a node the cluster lacks: skipped when configured to', async () => {
    const api = await startCluster();
    api.cluster.addPod(pod('api-0', { owner: ['ReplicaSet', 'api'] }));
    const patch = held(cleanups);
    api.failNext(1, { effect: 'delay', until: patch.until, method: 'PATCH', path: /\/nodes\/node-a$/ });
    const drained = handlerFor(api, { nodeNotFound: 'skip', watchCache: false }).handle(event({ node: 'node-a' }), context());
    // Found by its GET; its PATCH, whenever it comes, waits until the node is gone.
    await vi.waitFor(() => expect(api.requests.some((r) => r.method === 'GET' && r.path.endsWith('/nodes/node-a'))).toBe(true), { timeout: 5_000, interval: 5 });
    api.cluster.deleteNode('node-a');
    patch.open();
    expect(await drained).toMatchObject({ status: 'skipped', message: 'node "node-a" does not exist in this cluster; nothing to drain' });
  });

  it('a node deleted between its look-up and its cordon is gone: skipped with node_gone=true by default too, so the next plugin (the replacement) runs', async () => {
    const api = await startCluster();
    api.cluster.addPod(pod('api-0', { owner: ['ReplicaSet', 'api'] }));
    const patch = held(cleanups);
    api.failNext(1, { effect: 'delay', until: patch.until, method: 'PATCH', path: /\/nodes\/node-a$/ });
    const drained = handlerFor(api, { watchCache: false }).handle(event({ node: 'node-a', instance_id: 'i-0aaa' }), context());
    await vi.waitFor(() => expect(api.requests.some((r) => r.method === 'GET' && r.path.endsWith('/nodes/node-a'))).toBe(true), { timeout: 5_000, interval: 5 });
    api.cluster.deleteNode('node-a');
    patch.open();
    expect(await drained).toEqual({ status: 'skipped', message: 'node "node-a" of instance i-0aaa does not exist in this cluster; nothing to drain', attributes: { node_gone: 'true' } });
  });

  it.each([true, false])('a node name another instance has taken since (the cloud reuses names) is not the node the event means: nothing drained, the event\'s node gone (watch cache %s)', async (watchCache) => {
    const api = await startCluster();
    api.cluster.deleteNode('node-a');
    api.cluster.addNode({ metadata: { name: 'node-a' }, spec: { providerID: 'aws:///eu-west-1a/i-0new' } });
    api.cluster.addPod(pod('api-0', { owner: ['ReplicaSet', 'api'] }));
    const handler = handlerFor(api, { watchCache });

    const result = await handler.handle(event({ node: 'node-a', instance_id: 'i-0aaa' }), context());
    expect(result).toEqual({ status: 'skipped', message: 'node "node-a" of instance i-0aaa does not exist in this cluster; nothing to drain', attributes: { node_gone: 'true' } });
    expect(writes(api)).toEqual([]);
    expect(api.cluster.node('node-a')?.spec?.unschedulable).toBeUndefined();
    // The new instance's own notice drains it.
    expect(await handler.handle(event({ node: 'node-a', instance_id: 'i-0new' }), context())).toMatchObject({ attributes: { node: 'node-a', pods_evicted: '1' } });
  });

  it('answers INVALID_ARGUMENT for an event with neither a node nor an instance_id label', async () => {
    const api = await startCluster();
    const err = await rejection(handlerFor(api).handle(event({ alertname: 'SpotTerminating' }), context()));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toBe('the event has neither a "node" nor an "instance_id" label, so there is no node to drain');
  });

  it('retries API faults', async () => {
    const api = await startCluster();
    for (let i = 0; i < 3; i++) api.cluster.addPod(pod(`api-${i}`, { owner: ['ReplicaSet', 'api'] }));
    api.failNext(2, { code: 500 });
    api.failNext(1, { code: 409, method: 'PATCH' });
    api.failNext(2, { code: 503, method: 'POST', path: /\/eviction$/ });

    const result = await handlerFor(api).handle(event({ node: 'node-a' }), context());

    expect(result.attributes).toMatchObject({ pods_evicted: '3', pods_remaining: '0' });
    expect(api.cluster.node('node-a')?.spec?.unschedulable).toBe(true);
    expect(api.requests.map((r) => r.code).filter((c) => c >= 400)).toEqual([500, 500, 409, 503, 503]);
  });

  it('serves over real gRPC and answers node, pods_evicted, pods_remaining, duration_ms', async () => {
    const api = await startCluster();
    api.cluster.addPod(pod('api-0', { owner: ['ReplicaSet', 'api'] }));
    const server = await serve(0, handlerFor(api), { host: '127.0.0.1' });
    const client = new PluginClient(`127.0.0.1:${server.port}`);
    cleanups.push(() => server.close(), () => client.close());

    const res = await client.handle(event({ node: 'node-a' }), { flow: 'spot', timeoutMs: 5_000 });

    expect(res.status).toBe('ok');
    expect(res.message).toBe('drained node node-a: 1 pods evicted');
    expect(Object.keys(res.attributes).sort()).toEqual(['duration_ms', 'node', 'pods_evicted', 'pods_remaining']);
    expect(res.attributes).toMatchObject({ node: 'node-a', pods_evicted: '1', pods_remaining: '0' });
    expect(Number(res.attributes.duration_ms)).toBeGreaterThanOrEqual(0);
  });
});

describe('a wave of drains', () => {
  it('drains 12 nodes at once over a few kept-alive connections, lists nodes and pods once and waits on the watch, not a poll', async () => {
    const api = await startKubeApiServer({ msPerGraceSecond: 5 });
    cleanups.push(() => api.close());
    // The spare node first: the stand-in reschedules evicted pods onto the first schedulable node.
    api.cluster.addNode({ metadata: { name: 'spare' } });
    const nodes = Array.from({ length: 12 }, (_, i) => `node-${i}`);
    for (const node of nodes) {
      api.cluster.addNode({ metadata: { name: node } });
      for (let p = 0; p < 4; p++) api.cluster.addPod({ ...pod(`${node}-api-${p}`, { owner: ['ReplicaSet', 'api'], grace: 10 }), spec: { nodeName: node, terminationGracePeriodSeconds: 10 } });
      api.cluster.addPod({ ...pod(`${node}-proxy`, { owner: ['DaemonSet', 'kube-proxy'] }), spec: { nodeName: node } });
    }
    const handler = handlerFor(api, { maxInFlight: 4 });

    const results = await Promise.all(nodes.map((node) => handler.handle(event({ node }), context())));

    for (const result of results) expect(result.attributes).toMatchObject({ pods_evicted: '4', pods_remaining: '0' });
    for (const node of nodes) {
      expect(api.cluster.node(node)?.spec?.unschedulable).toBe(true);
      expect(names(api.cluster.pods(node))).toEqual([`${node}-proxy`]);
    }
    await handler.eventsRecorded();
    // One listing of the cluster's nodes and pods for the whole wave, and one watch of each: no GET of
    // a node, no pod list per node, no poll while pods terminate.
    const kinds = (path: string): string[] => api.requests.filter((r) => r.path === path).map((r) => (r.query.watch ? 'watch' : 'list'));
    expect(kinds('/api/v1/pods')).toEqual(['list', 'watch']);
    expect(kinds('/api/v1/nodes')).toEqual(['list', 'watch']);
    expect(api.requests.filter((r) => r.query.fieldSelector !== undefined || (r.method === 'GET' && r.path.startsWith('/api/v1/nodes/')))).toEqual([]);
    // 12 PATCHes, 48 evictions, 24 events over at most four kept-alive connections, plus the two watches'.
    expect(api.requests.filter((r) => r.method !== 'GET')).toHaveLength(12 + 48 + 24);
    expect(api.connections()).toBeLessThanOrEqual(4 + 2);
  });
});

describe('DrainHandler on an injected clock', () => {
  it('reads the drain deadline from the clock, and is cut off only when the clock passes it', async () => {
    const api = await startCluster();
    api.cluster.addPod(pod('db-0', { owner: ['StatefulSet', 'db'], labels: { app: 'db' } }));
    api.cluster.addPodDisruptionBudget({ metadata: { name: 'db', namespace: 'apps' }, spec: { selector: { matchLabels: { app: 'db' } }, minAvailable: 1 } });
    // Long before the real now: a drain reading the system clock would find its deadline passed.
    const clock = manualClock(Date.parse('2020-01-01T00:00:00Z'));
    const handler = handlerFor(api, { clock, terminationMarginMs: 10_000 });
    const call = handler.handle(event({ node: 'node-a', termination_time: new Date(clock.now() + 60_000).toISOString() }), {
      ...context(),
      deadline: new Date(clock.now() + 120_000),
    });
    let settled = false;
    void call.then(() => (settled = true), () => (settled = true));
    // The budget refuses the eviction; the drain retries, each wait on the clock. (Waits here take 5 s, not vitest's
    // default 1 s: the first eviction comes after a dozen API calls, which a busy machine can make last longer.)
    await vi.waitFor(() => expect(api.requests.filter((r) => r.path.endsWith('/eviction'))).not.toHaveLength(0), { timeout: 5_000, interval: 5 });
    // The stand-in records the eviction before its 429 reaches the drain: move the clock only once the retry sleeps on it
    // (beside the deadline's sleep), or the advance comes first and the retry sleeps until the next one.
    await vi.waitFor(() => expect(clock.sleeping).toBe(2), { timeout: 5_000, interval: 5 });
    clock.advance(49_000);
    await vi.waitFor(() => expect(api.requests.filter((r) => r.path.endsWith('/eviction')).length).toBeGreaterThan(1), { timeout: 5_000, interval: 5 });
    expect(settled).toBe(false);
    // The deadline: the termination time less its 10 s margin.
    clock.advance(1_000);
    const err = await rejection(call);
    expect(err).toBeInstanceOf(DrainIncompleteError);
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect((err as DrainIncompleteError).attributes).toMatchObject({ node: 'node-a', pods_evicted: '0', pods_remaining: '1', duration_ms: '50000' });
  });
});

describe('DrainHandler answers in detail (issue 20: mutation survivors)', () => {
  it('fails at once with the first eviction error no retry can fix, and stops the other evictions', async () => {
    const api = await startCluster();
    for (let i = 0; i < 3; i++) api.cluster.addPod(pod(`api-${i}`, { owner: ['ReplicaSet', 'api'] }));
    api.failNext(1, { code: 403, method: 'POST', path: /\/eviction$/ });
    const err = await rejection(handlerFor(api, { concurrency: 1 }).handle(event({ node: 'node-a' }), context()));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.message).toMatch(/^evicting pod apps\/api-\d: /);
    // One pod at a time: the refusal came first, and the others never had their turn.
    expect(api.requests.filter((r) => r.path.endsWith('/eviction')).map((r) => r.code)).toEqual([403]);
    expect(api.cluster.pods('node-a')).toHaveLength(3);
  });

  it('fails at once with FAILED_PRECONDITION for a pod two PodDisruptionBudgets select, which the eviction API answers 500 however often asked', async () => {
    const api = await startCluster();
    for (const name of ['web-0', 'web-1']) api.cluster.addPod(pod(name, { owner: ['ReplicaSet', 'web'], labels: { app: 'web', tier: 'front' } }));
    api.cluster.addPodDisruptionBudget({ metadata: { name: 'web', namespace: 'apps' }, spec: { selector: { matchLabels: { app: 'web' } }, maxUnavailable: 1 } });
    api.cluster.addPodDisruptionBudget({ metadata: { name: 'front', namespace: 'apps' }, spec: { selector: { matchLabels: { tier: 'front' } }, maxUnavailable: 1 } });
    const err = await rejection(handlerFor(api, { concurrency: 1 }).handle(event({ node: 'node-a' }), context()));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toMatch(/^evicting pod apps\/web-\d: .*more than one PodDisruptionBudget.*\(make one PodDisruptionBudget select the pod\)$/);
    expect(api.cluster.evictions().map((e) => e.code)).toEqual([500]);
  });

  it('waits for a pod whose namespace is being deleted (eviction refused 403 NamespaceTerminating) instead of failing the whole drain with PERMISSION_DENIED', async () => {
    const api = await startCluster();
    for (let i = 0; i < 2; i++) api.cluster.addPod(pod(`api-${i}`, { owner: ['ReplicaSet', 'api'] }));
    const preview = pod('web-0', { owner: ['ReplicaSet', 'web'] });
    api.cluster.addPod({ ...preview, metadata: { ...preview.metadata, namespace: 'preview-42' } });
    api.cluster.terminateNamespace('preview-42');
    const drained = handlerFor(api, { concurrency: 1 }).handle(event({ node: 'node-a' }), context());
    // The namespace controller deletes the namespace's pods; the eviction API refuses them meanwhile, as kubectl drain knows.
    await vi.waitFor(() => expect(api.cluster.evictions().filter((e) => e.namespace === 'preview-42').map((e) => e.code)).toContain(403), { timeout: 5_000, interval: 5 });
    api.cluster.deletePod('preview-42', 'web-0', 2);
    const result = await drained;
    expect(result.attributes).toMatchObject({ pods_evicted: '2', pods_remaining: '0' });
    expect(result.message).toBe('drained node node-a: 2 pods evicted, 1 deleted with their namespace');
    expect(api.cluster.pods('node-a')).toEqual([]);
  });

  it('counts a pod gone before its eviction (404) neither as evicted nor as remaining', async () => {
    const api = await startCluster();
    for (let i = 0; i < 2; i++) api.cluster.addPod(pod(`api-${i}`, { owner: ['ReplicaSet', 'api'] }));
    api.failNext(1, { code: 404, method: 'POST', path: /\/eviction$/ });
    const result = await handlerFor(api, { concurrency: 1 }).handle(event({ node: 'node-a' }), context());
    expect(result.attributes).toMatchObject({ pods_evicted: '1', pods_remaining: '0' });
    expect(result.message).toBe('drained node node-a: 1 pods evicted');
  });

  it('asks for the pod’s own grace period under the cap, 30 s for a pod that sets none', async () => {
    const api = await startCluster();
    api.cluster.addPod(pod('no-grace', { owner: ['ReplicaSet', 'api'] }));
    api.cluster.addPod(pod('short', { owner: ['ReplicaSet', 'api'], grace: 5 }));
    await handlerFor(api, { gracePeriodSeconds: 40 }).handle(event({ node: 'node-a' }), context());
    expect(Object.fromEntries(api.cluster.evictions().map((e) => [e.name, e.gracePeriodSeconds]))).toEqual({ 'no-grace': 30, short: 5 });
  });

  it('names five pods left at the deadline and counts the rest', async () => {
    const api = await startCluster();
    for (let i = 0; i < 7; i++) api.cluster.addPod(pod(`db-${i}`, { owner: ['StatefulSet', 'db'], labels: { app: 'db' } }));
    api.cluster.addPodDisruptionBudget({ metadata: { name: 'db', namespace: 'apps' }, spec: { selector: { matchLabels: { app: 'db' } }, minAvailable: 7 } });
    const err = await rejection(handlerFor(api, { replyMarginMs: 300 }).handle(event({ node: 'node-a' }), context(3_000)));
    expect(err.message).toMatch(
      /^drain of node node-a stopped at its deadline: pods_evicted=0 pods_remaining=7 \(apps\/db-0, apps\/db-1, apps\/db-2, apps\/db-3, apps\/db-4, and 2 more\); last reason: evicting pod apps\/db-\d: Cannot evict pod as it would violate the pod's disruption budget\. The disruption budget db needs 7 healthy pods and has 7 currently$/,
    );
  });

  it('without the watch cache, polls the node until its evicted pods are gone, and answers only then', async () => {
    // Grace periods longer than any test: the pods go when the test cuts them short, after polls that saw them,
    // not on a timer that a busy machine can let run out before the polls.
    const api = await startCluster();
    for (let i = 0; i < 3; i++) api.cluster.addPod(pod(`slow-${i}`, { owner: ['ReplicaSet', 'api'], grace: 100_000 }));
    let answered = false;
    const drained = handlerFor(api, { watchCache: false, deletionPollMs: 20 }).handle(event({ node: 'node-a' }), context()).finally(() => (answered = true));
    const polls = () => api.requests.filter((r) => r.method === 'GET' && r.path === '/api/v1/pods' && r.query.fieldSelector === 'spec.nodeName=node-a');
    await vi.waitFor(() => expect(polls().length).toBeGreaterThan(2), { timeout: 5_000, interval: 5 });
    expect(answered).toBe(false);
    for (let i = 0; i < 3; i++) api.cluster.deletePod('apps', `slow-${i}`, 0);
    expect((await drained).message).toBe('drained node node-a: 3 pods evicted');
    expect(api.cluster.removals().filter((r) => r.node === 'node-a').map((r) => r.name).sort()).toEqual(['slow-0', 'slow-1', 'slow-2']);
  });

  it.each([false, true])('says how many evicted pods were still terminating when the deadline came (watchCache %s)', async (watchCache) => {
    // 5 ms per grace second: a pod with 1000 s of grace outlasts the drain (3 s, so a busy machine still evicts it in time).
    const api = await startCluster();
    api.cluster.addPod(pod('slow', { owner: ['ReplicaSet', 'api'], grace: 1_000 }));
    const clock = jumpableClock();
    const logger = recordingLogger();
    const answer = handlerFor(api, { replyMarginMs: 300, watchCache, clock, logger }).handle(event({ node: 'node-a' }), context(3_000));
    // Once the handler has its eviction's answer: it waits for the pod to go.
    await jumpWhen(clock, 3_000, () => logger.lines.some((l) => l.message === 'evicted pod'));
    const result = await answer;
    expect(result.message).toBe('drained node node-a: 1 pods evicted, 1 still terminating at the deadline');
    expect(result.attributes).toMatchObject({ pods_evicted: '1', pods_remaining: '0' });
  });

  it('leaves the pods after the deadline untouched, and says the drain stopped before their turn', async () => {
    const api = await startCluster();
    api.cluster.addPod(pod('db-0', { owner: ['StatefulSet', 'db'], labels: { app: 'db' } }));
    for (let i = 0; i < 2; i++) api.cluster.addPod(pod(`web-${i}`, { owner: ['ReplicaSet', 'web'] }));
    api.cluster.addPodDisruptionBudget({ metadata: { name: 'db', namespace: 'apps' }, spec: { selector: { matchLabels: { app: 'db' } }, minAvailable: 1 } });
    // One eviction at a time, in the order the API server lists them (by name): the budget refuses
    // db-0, whose next try waits on a clock that is then moved past the deadline, so the web pods
    // never get their turn.
    const clock = manualClock(Date.parse('2020-01-01T00:00:00Z'));
    const handler = handlerFor(api, { clock, concurrency: 1, watchCache: false, backoff: () => 1_000 });
    const call = rejection(handler.handle(event({ node: 'node-a' }), { ...context(), deadline: new Date(clock.now() + 10_000), signal: new AbortController().signal }));
    await vi.waitFor(() => expect(clock.sleeping).toBeGreaterThan(1), { timeout: 5_000, interval: 5 });
    clock.advance(10_000);
    const err = await call;
    expect(err.message).toMatch(
      /^drain of node node-a stopped at its deadline: pods_evicted=0 pods_remaining=3 \(apps\/db-0, apps\/web-0, apps\/web-1\); last reason: the drain stopped before its turn$/,
    );
    expect(api.cluster.evictions().map((e) => e.name)).toEqual(['db-0']);
  });

  it('logs each pod it evicted with the grace period asked for', async () => {
    const api = await startCluster();
    api.cluster.addPod(pod('api-0', { owner: ['ReplicaSet', 'api'], grace: 60 }));
    const logger = recordingLogger();
    await handlerFor(api, { gracePeriodSeconds: 20, logger }).handle(event({ node: 'node-a' }), context());
    expect(logger.lines).toContainEqual({ level: 'info', message: 'evicted pod', fields: { pod: 'apps/api-0', gracePeriodSeconds: 20 } });
  });

  it('answers a call cancelled while an eviction waits to retry with CANCELLED, not as a drain stopped at its deadline', async () => {
    const api = await startCluster();
    api.cluster.addPod(pod('db-0', { owner: ['StatefulSet', 'db'], labels: { app: 'db' } }));
    api.cluster.addPodDisruptionBudget({ metadata: { name: 'db', namespace: 'apps' }, spec: { selector: { matchLabels: { app: 'db' } }, minAvailable: 1 } });
    // A long wait between tries: the cancel comes while the eviction waits for its next one.
    const handler = handlerFor(api, { backoff: () => 60_000 });
    const controller = new AbortController();
    const call = rejection(handler.handle(event({ node: 'node-a' }), { ...context(), deadline: undefined, signal: controller.signal }));
    await vi.waitFor(() => expect(api.cluster.evictions().map((e) => e.code)).toEqual([429]), { timeout: 5_000, interval: 5 });
    controller.abort(new PluginError(Code.Canceled, 'call cancelled by the client'));
    const err = await call;
    expect(err).not.toBeInstanceOf(DrainIncompleteError);
    expect([err.code, err.message]).toEqual([Code.Canceled, 'call cancelled by the client']);
  });

  it('gives a pod up at once when its next try would come after the deadline, without waiting for it', async () => {
    const api = await startCluster();
    api.cluster.addPod(pod('db-0', { owner: ['StatefulSet', 'db'], labels: { app: 'db' } }));
    api.cluster.addPodDisruptionBudget({ metadata: { name: 'db', namespace: 'apps' }, spec: { selector: { matchLabels: { app: 'db' } }, minAvailable: 1 } });
    // The clock never moves: the answer cannot come from waiting for the deadline.
    const clock = manualClock(Date.parse('2020-01-01T00:00:00Z'));
    // The next try would come exactly at the deadline: too late.
    const handler = handlerFor(api, { clock, backoff: () => 29_000, replyMarginMs: 1_000 });
    const err = await rejection(handler.handle(event({ node: 'node-a' }), { ...context(), deadline: new Date(clock.now() + 30_000) }));
    expect(err).toBeInstanceOf(DrainIncompleteError);
    expect((err as DrainIncompleteError).attributes).toMatchObject({ pods_evicted: '0', pods_remaining: '1', duration_ms: '0' });
    expect(api.cluster.evictions().map((e) => e.code)).toEqual([429]);
  });

  it('answers with the budget’s refusal, not the deadline, when the deadline cuts a retry short', async () => {
    const api = await startCluster();
    api.cluster.addPod(pod('db-0', { owner: ['StatefulSet', 'db'], labels: { app: 'db' } }));
    api.cluster.addPodDisruptionBudget({ metadata: { name: 'db', namespace: 'apps' }, spec: { selector: { matchLabels: { app: 'db' } }, minAvailable: 1 } });
    const clock = manualClock(Date.parse('2020-01-01T00:00:00Z'));
    const handler = handlerFor(api, { clock, watchCache: false, backoff: () => 1_000 });
    const call = rejection(handler.handle(event({ node: 'node-a' }), { ...context(), deadline: new Date(clock.now() + 10_000), signal: new AbortController().signal }));
    await vi.waitFor(() => expect(clock.sleeping).toBeGreaterThan(1), { timeout: 5_000, interval: 5 });
    clock.advance(10_000);
    expect((await call).message).toMatch(/; last reason: evicting pod apps\/db-0: Cannot evict pod as it would violate the pod's disruption budget\. The disruption budget db needs 1 healthy pods and has 1 currently$/);
  });

  it('never evicts a pod recreated under the name of one it was evicting (a StatefulSet’s, on another node): the eviction names the uid, and the old pod counts as gone', async () => {
    const api = await startCluster({ replaceEvictedPods: false });
    api.cluster.addPod(pod('db-0', { owner: ['StatefulSet', 'db'], labels: { app: 'db' } }));
    api.cluster.addPodDisruptionBudget({ metadata: { name: 'db', namespace: 'apps' }, spec: { selector: { matchLabels: { app: 'db' } }, minAvailable: 1 } });
    const drain = handlerFor(api).handle(event({ node: 'node-a' }), context());
    await vi.waitFor(() => expect(api.cluster.evictions().map((e) => e.code)).toContain(429), { timeout: 5_000, interval: 5 });
    // While the budget holds the eviction back, db-0 goes (deleted by hand, say) and its StatefulSet
    // recreates it under the same name on node-b, where the budget then allows one disruption.
    api.cluster.deletePod('apps', 'db-0', 0);
    for (const name of ['db-0', 'db-1']) api.cluster.addPod({ ...pod(name, { owner: ['StatefulSet', 'db'], labels: { app: 'db' } }), spec: { nodeName: 'node-b' } });

    const result = await drain;
    expect(result.attributes).toMatchObject({ pods_evicted: '0', pods_remaining: '0' });
    expect(api.cluster.evictions().filter((e) => e.code === 201)).toEqual([]);
    expect(api.cluster.pods('node-b').map((p) => [p.metadata.name, p.metadata.deletionTimestamp])).toEqual([['db-0', undefined], ['db-1', undefined]]);
  });

  it('sends none of the evictions still waiting for a call slot once its call is cancelled: the drain that answered leaves nothing to go out later', async () => {
    const kube = await startCluster();
    for (let i = 0; i < 3; i++) kube.cluster.addPod(pod(`api-${i}`, { owner: ['ReplicaSet', 'api'] }));
    const kc = new KubeConfig();
    kc.loadFromOptions(kube.kubeConfigOptions());
    // One call in flight at a time, as in a wave that fills every slot: the first eviction, held at the
    // API server, keeps it; the other two wait for it in the plugin.
    const api = createKubeApi(kc, { maxInFlight: 1 });
    cleanups.push(() => api.close());
    let evictions = 0;
    const counted: KubeApi = { ...api, evictPod: (...args) => (evictions++, api.evictPod(...args)) };
    const first = held(cleanups);
    kube.failNext(1, { effect: 'delay', until: first.until, method: 'POST', path: /\/eviction$/ });
    const handler = new DrainHandler(counted, { backoff: () => 10, logger: silent });
    cleanups.push(() => handler.close());
    const controller = new AbortController();
    const call = rejection(handler.handle(event({ node: 'node-a' }), { ...context(), signal: controller.signal }));
    await vi.waitFor(() => expect(evictions).toBe(3), { timeout: 5_000, interval: 5 });
    controller.abort(new PluginError(Code.Canceled, 'call cancelled by the client'));
    expect((await call).code).toBe(Code.Canceled);

    first.open();
    // A call behind them in the same class: once it is answered, whatever still waited has gone out.
    await api.listPodsOnNode('node-a');
    expect(kube.cluster.evictions().map((e) => e.name)).toEqual(['api-0']);
  });

  it('counts the tries it waits between', async () => {
    const api = await startCluster();
    api.failNext(2, { code: 500, method: 'GET', path: /^\/api\/v1\/nodes\/node-a$/ });
    const attempts: number[] = [];
    await handlerFor(api, { watchCache: false, backoff: (attempt) => (attempts.push(attempt), 10) }).handle(event({ node: 'node-a' }), context());
    expect(attempts).toEqual([1, 2]);
  });

  it('skips a node the cluster lacks with a message saying so, when configured to', async () => {
    const api = await startCluster();
    const skipped = await handlerFor(api, { nodeNotFound: 'skip' }).handle(event({ node: 'node-z' }), context());
    expect(skipped).toEqual({ status: 'skipped', message: 'node "node-z" does not exist in this cluster; nothing to drain' });
  });

  it('names exactly five pods left without counting more, logs the drain it could not finish and records a DrainFailed Warning', async () => {
    const api = await startCluster();
    for (let i = 0; i < 5; i++) api.cluster.addPod(pod(`db-${i}`, { owner: ['StatefulSet', 'db'], labels: { app: 'db' } }));
    api.cluster.addPodDisruptionBudget({ metadata: { name: 'db', namespace: 'apps' }, spec: { selector: { matchLabels: { app: 'db' } }, minAvailable: 5 } });
    const logger = recordingLogger();
    const clock = jumpableClock();
    const handler = handlerFor(api, { replyMarginMs: 300, logger, clock });

    const answer = rejection(handler.handle(event({ node: 'node-a' }), context(2_000)));
    await jumpWhen(clock, 2_000, () => api.cluster.evictions().some((e) => e.name.startsWith('db-') && e.code === 429));
    const err = await answer;
    expect(err.message).toMatch(/^drain of node node-a stopped at its deadline: pods_evicted=0 pods_remaining=5 \(apps\/db-0, apps\/db-1, apps\/db-2, apps\/db-3, apps\/db-4\); last reason: /);
    const pods = ['apps/db-0', 'apps/db-1', 'apps/db-2', 'apps/db-3', 'apps/db-4'];
    expect(logger.lines).toContainEqual({ level: 'warn', message: 'drain incomplete', fields: expect.objectContaining({ node: 'node-a', pods_evicted: '0', pods_remaining: '5', pods }) });
    await handler.eventsRecorded();
    const events = api.cluster.events().map((e) => ({ reason: e.reason, type: e.type, message: e.message }));
    expect(events).toEqual([
      { reason: 'SpotInterruption', type: 'Warning', message: 'Hollowtrees received prometheus.server.alert.SpotTerminating (event alert-1): node cordoned and tainted, draining it' },
      { reason: 'DrainFailed', type: 'Warning', message: err.message },
    ]);
  });

  it('logs the pods it leaves alone, each pod a dry run would evict, and the node it drained', async () => {
    const api = await startCluster();
    api.cluster.addPod(pod('kube-proxy-a', { owner: ['DaemonSet', 'kube-proxy'] }));
    api.cluster.addPod(pod('api-0', { owner: ['ReplicaSet', 'api'], grace: 60 }));
    const logger = recordingLogger();

    await handlerFor(api, { dryRun: true, gracePeriodSeconds: 20, logger }).handle(event({ node: 'node-a' }), context());
    expect(logger.lines).toContainEqual({ level: 'info', message: 'not evicting pod', fields: { node: 'node-a', pod: 'apps/kube-proxy-a', reason: 'daemonset' } });
    expect(logger.lines).toContainEqual({ level: 'info', message: 'dry run: would evict pod', fields: { node: 'node-a', pod: 'apps/api-0', gracePeriodSeconds: 20 } });

    logger.lines.length = 0;
    await handlerFor(api, { logger }).handle(event({ node: 'node-a' }), context());
    expect(logger.lines).toContainEqual({
      level: 'info',
      message: 'drained node',
      fields: { node: 'node-a', pods_evicted: '1', pods_remaining: '0', duration_ms: expect.stringMatching(/^\d+$/), terminating: 0 },
    });
  });

  it('refuses a drain whose deadline, less the reply margin, is exactly now', async () => {
    const api = await startCluster();
    const clock = manualClock(Date.parse('2020-01-01T00:00:00Z'));
    const handler = handlerFor(api, { clock, replyMarginMs: 1_000 });
    const err = await rejection(handler.handle(event({ node: 'node-a' }), { ...context(), deadline: new Date(clock.now() + 1_000) }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toBe('no time left to drain node "node-a": its deadline 2020-01-01T00:00:00.000Z has passed');
  });

  it('cordons a node with nothing to evict and answers it drained, not skipped; a second call skips it and logs why', async () => {
    const api = await startCluster();
    api.cluster.addPod(pod('kube-proxy-a', { owner: ['DaemonSet', 'kube-proxy'] }));
    const logger = recordingLogger();
    const handler = handlerFor(api, { logger });

    const first = await handler.handle(event({ node: 'node-a' }), context());
    expect([first.status, first.message]).toEqual([undefined, 'drained node node-a: 0 pods evicted']);
    expect(api.cluster.node('node-a')?.spec?.unschedulable).toBe(true);
    const again = await handler.handle(event({ node: 'node-a' }), context());
    expect([again.status, again.message]).toEqual(['skipped', 'node node-a is already cordoned and drained']);
    expect(logger.lines).toContainEqual({ level: 'info', message: 'node already cordoned and drained', fields: { node: 'node-a' } });

    // A dry run of the drained node is not skipped: it says what it would do.
    const dry = await handlerFor(api, { dryRun: true }).handle(event({ node: 'node-a' }), context());
    expect([dry.status, dry.message]).toEqual([undefined, 'dry run: would evict 0 pods from node node-a']);
  });

  it('logs a node it skips as configured', async () => {
    const api = await startCluster();
    const logger = recordingLogger();
    await handlerFor(api, { nodeNotFound: 'skip', logger }).handle(event({ instance_id: 'i-0zzz' }), context());
    expect(logger.lines).toContainEqual({ level: 'info', message: 'node not found; skipping as configured', fields: { node: 'the node of instance i-0zzz' } });
  });

  it('start() lists and watches nodes and pods before the first drain; close() stops the watches for good', async () => {
    const api = await startCluster();
    const handler = handlerFor(api);
    const lists = () => api.requests.filter((r) => r.method === 'GET' && r.query.watch === undefined).map((r) => r.path).sort();

    handler.start();
    await vi.waitFor(() => expect(lists()).toEqual(['/api/v1/nodes', '/api/v1/pods']), { timeout: 5_000, interval: 10 });
    await handler.close();
    // A watch is recorded when it ends. Connections dropped after the close: a watch still
    // running would come back, and be recorded when the second drop ends it.
    const pause = () => new Promise((resolve) => setTimeout(resolve, 200));
    api.dropConnections();
    await pause();
    const before = api.requests.length;
    api.dropConnections();
    await pause();
    expect(api.requests.length).toBe(before);
  });

  it('a node deleted while the node watch was down, which the cache then listed again (410 Gone), is gone too: skipped with node_gone=true, so the next plugin (the replacement) runs', async () => {
    const api = await startCluster();
    const handler = handlerFor(api);
    handler.start();
    // The node watch is open (a watch is recorded when it ends: the drop below ends it).
    await vi.waitFor(() => expect(api.requests.filter((r) => r.path === '/api/v1/nodes' && r.query.watch === undefined)).toHaveLength(1), { timeout: 5_000, interval: 10 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    // The API server restarts: the watch comes back to 410 Gone, and its list again is slow.
    api.failNext(1, { code: 410, method: 'GET', path: /^\/api\/v1\/nodes$/, query: /(^|&)watch=/ });
    const relist = held(cleanups);
    const listing = api.failNext(1, { effect: 'delay', until: relist.until, method: 'GET', path: /^\/api\/v1\/nodes$/, query: /(^|&)limit=/ });
    // The watch after the relist: the cache has the list by then.
    const watchAfter = api.failNext(1, { effect: 'delay', until: Promise.resolve(), method: 'GET', path: /^\/api\/v1\/nodes$/, query: /(^|&)watch=/ });
    api.dropConnections();
    await vi.waitFor(() => expect(listing.hits).toBe(1), { timeout: 5_000, interval: 10 });
    // Meanwhile node-a's instance is reclaimed and the cloud node controller deletes it.
    api.cluster.deleteNode('node-a');
    relist.open();
    await vi.waitFor(() => expect(watchAfter.hits).toBe(1), { timeout: 5_000, interval: 10 });

    const result = await handler.handle(event({ node: 'node-a', instance_id: 'i-0aaa' }), context()).catch((err: unknown) => err);
    expect(result).toEqual({ status: 'skipped', message: 'node "node-a" of instance i-0aaa does not exist in this cluster; nothing to drain', attributes: { node_gone: 'true' } });
  });

  it('asks the API server for a node the cache does not have yet', async () => {
    const api = await startCluster();
    const handler = handlerFor(api);
    handler.start();
    await vi.waitFor(() => expect(api.requests.some((r) => r.path === '/api/v1/nodes' && r.query.watch === undefined)).toBe(true), { timeout: 5_000, interval: 10 });
    // The node watch is held from now on: the cache does not learn of node-c.
    api.failNext(100, { effect: 'delay', until: held(cleanups).until, method: 'GET', path: /^\/api\/v1\/nodes$/ });
    api.dropConnections();
    api.cluster.addNode({ metadata: { name: 'node-c' }, spec: { providerID: 'aws:///eu-west-1c/i-0ccc' } });

    const result = await handler.handle(event({ node: 'node-c' }), context());
    expect(result.attributes).toMatchObject({ node: 'node-c' });
    expect(api.requests.filter((r) => r.path === '/api/v1/nodes/node-c' && r.method === 'GET')).toHaveLength(1);
  });
});
