import { rootCertificates } from 'node:tls';
import { Code, jsonLogger, PluginError } from '@hollowtrees/grpcplugin';
import { makeTestCertificates, rejectionOf } from '@hollowtrees/testkit';
import { KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { cordonNode } from './cordon.js';
import { createKubeApi } from './kube-api.js';
import { findNode } from './node-lookup.js';
import { cleanupsAfterEach, retryWithin, startStandIn, startTlsServer } from './test-support/kube.js';
import type { WatchEvent } from './watched-list.js';

const cleanups = cleanupsAfterEach();
const start = () => startStandIn(cleanups, { msPerGraceSecond: 1 });

const pod = (name: string, nodeName: string, grace?: number) => ({
  metadata: { name, namespace: 'apps' },
  spec: { nodeName, ...(grace === undefined ? {} : { terminationGracePeriodSeconds: grace }) },
});

describe('createKubeApi', () => {
  it('lists every page of 500: all 1,200 nodes, those a selector picks, and only the pods of the node asked for', async () => {
    const { kube, api } = await start();
    for (let i = 0; i < 1_200; i++) kube.cluster.addNode({ metadata: { name: `n${i}`, labels: { half: String(i % 2) } } });
    for (let i = 0; i < 600; i++) kube.cluster.addPod(pod(`a${i}`, 'n1'));
    for (let i = 0; i < 5; i++) kube.cluster.addPod(pod(`b${i}`, 'n2'));

    expect(await api.listNodes()).toHaveLength(1_200);
    expect((await api.listNodes('half=1')).map((n) => n.metadata?.name)).toHaveLength(600);
    const onN1 = await api.listPodsOnNode('n1');
    expect(onN1).toHaveLength(600);
    expect(new Set(onN1.map((p) => p.spec?.nodeName))).toEqual(new Set(['n1']));

    const lists = kube.requests.filter((r) => r.method === 'GET');
    expect(lists.every((r) => r.query.limit === '500')).toBe(true);
    expect(lists.filter((r) => r.path === '/api/v1/nodes' && r.query.labelSelector === undefined)).toHaveLength(3);
    expect(lists.filter((r) => r.path === '/api/v1/pods').map((r) => r.query.fieldSelector)).toEqual(['spec.nodeName=n1', 'spec.nodeName=n1']);
  });

  it('reads a node\'s pods, and the nodes, again from the first page when a continue token expired (410 Gone): each once', async () => {
    const { kube, api } = await start();
    for (let i = 0; i < 501; i++) kube.cluster.addNode({ metadata: { name: `n${i}` } });
    for (let i = 0; i < 501; i++) kube.cluster.addPod(pod(`a${i}`, 'n1'));
    kube.failNext(1, { code: 410, path: /^\/api\/v1\/pods$/, query: /(^|&)continue=/ });
    kube.failNext(1, { code: 410, path: /^\/api\/v1\/nodes$/, query: /(^|&)continue=/ });
    const pods = (await api.listPodsOnNode('n1')).map((p) => p.metadata?.name);
    const nodes = (await api.listNodes()).map((n) => n.metadata?.name);
    expect([pods.length, new Set(pods).size, nodes.length, new Set(nodes).size]).toEqual([501, 501, 501, 501]);
    expect(kube.requests.filter((r) => r.code === 410)).toHaveLength(2);
  });

  it('fails as UNAVAILABLE, naming the list and the token, a list whose pages hand out a continue token again, instead of reading it for ever', async () => {
    const { kube, api } = await start();
    for (let i = 0; i < 501; i++) kube.cluster.addPod(pod(`a${i}`, 'n1'));
    kube.failNext(5, { effect: 'repeat-continue', path: /^\/api\/v1\/pods$/ });
    const err = await rejectionOf(api.listPodsOnNode('n1'), PluginError);
    expect(err.code).toBe(Code.Unavailable);
    expect(err.message).toMatch(/^listing the pods of node "n1": page 2 gave a continue token an earlier page gave \(.+\): the listing would never end$/);
    expect(kube.requests.filter((r) => r.path === '/api/v1/pods')).toHaveLength(2);
  });

  it('answers one page at a time for the caches, with its continue token and the list\'s version', async () => {
    const { kube, api } = await start();
    for (let i = 0; i < 501; i++) kube.cluster.addNode({ metadata: { name: `n${i}` } });
    kube.cluster.addPod(pod('p', 'n1'));

    const first = await api.listNodePage(undefined);
    expect(first.items).toHaveLength(500);
    expect(first.resourceVersion).toMatch(/^\d+$/);
    expect(first.continueToken).toEqual(expect.any(String));
    const last = await api.listNodePage(first.continueToken);
    expect([last.items.length, last.continueToken]).toEqual([1, undefined]);

    const pods = await api.listPodPage(undefined);
    expect([pods.items.map((p) => p.metadata?.name), pods.continueToken]).toEqual([['p'], undefined]);
  });

  it('watches from the version it is given, with bookmarks asked for, until stopped', async () => {
    const { kube, api } = await start();
    kube.cluster.addNode({ metadata: { name: 'n1' } });
    const { resourceVersion } = await api.listPodPage(undefined);
    // Made after the list and before the watch: a watch from the list's version still sees it.
    kube.cluster.addPod(pod('between', 'n1'));

    const events: Array<WatchEvent<V1Pod>> = [];
    let ended = false;
    const watch = await api.watch<V1Pod>('pods', resourceVersion, (e) => events.push(e), () => (ended = true));
    kube.cluster.addPod(pod('after', 'n1'));
    await expect.poll(() => events.map((e) => `${e.type} ${e.type === 'ERROR' ? '' : e.object.metadata?.name}`)).toEqual(['ADDED between', 'ADDED after']);
    expect(kube.requests.find((r) => r.query.watch === 'true')?.query).toMatchObject({ resourceVersion, allowWatchBookmarks: 'true' });

    watch.stop();
    await expect.poll(() => ended).toBe(true);
    kube.cluster.addPod(pod('stopped', 'n1'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(events).toHaveLength(2);
  });

  it('gives up a read that gets no answer within readTimeoutMs (ETIMEDOUT: UNAVAILABLE, tried again) and frees its call slot, as a write', async () => {
    // One call slot: the retry below goes through only once the read that got no answer has let go of it.
    const { kube, api } = await startStandIn(cleanups, {}, { maxInFlight: 1, readTimeoutMs: 1_000 });
    kube.cluster.addNode({ metadata: { name: 'n1' } });
    // A connection the API server (or a load balancer before it) stopped answering on: nothing ever comes back.
    const never = new Promise<never>(() => {});
    kube.failNext(1, { effect: 'delay', until: never, method: 'GET', path: /^\/api\/v1\/nodes\/n1$/ });
    const found = await findNode(api, { name: 'n1' }, retryWithin(cleanups, 20_000));
    expect(found?.metadata?.name).toBe('n1');
    // A cache's list page too: its list is tried again, not waited on for ever.
    kube.failNext(1, { effect: 'delay', until: never, method: 'GET', path: /^\/api\/v1\/pods$/ });
    await expect(api.listPodPage(undefined)).rejects.toMatchObject({ code: 'ETIMEDOUT', message: 'no answer within 1000 ms' });
    expect((await api.listPodPage(undefined)).items).toEqual([]);
  });

  it('evicts with the grace period given, or the pod\'s own when none is', async () => {
    const { kube, api } = await start();
    kube.cluster.addNode({ metadata: { name: 'n1' } });
    kube.cluster.addPod(pod('now', 'n1', 45));
    kube.cluster.addPod(pod('own', 'n1', 45));

    await api.evictPod('apps', 'now', 0);
    await api.evictPod('apps', 'own', undefined);
    expect(kube.cluster.evictions().map((e) => [e.name, e.code, e.gracePeriodSeconds])).toEqual([
      ['now', 201, 0],
      ['own', 201, 45],
    ]);
  });

  it('refuses a kubeconfig without a current cluster', () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'missing', user: 'u' }], currentContext: 'x' });
    expect(() => createKubeApi(kc)).toThrow('the kubeconfig has no current cluster');
  });

  it('refuses a readTimeoutMs no timer can wait, which would fail every read at once', async () => {
    const { kube } = await startStandIn(cleanups);
    const kc = new KubeConfig();
    kc.loadFromOptions(kube.kubeConfigOptions());
    for (const readTimeoutMs of [0, 1.5, 2 ** 31, Infinity, NaN]) {
      expect(() => createKubeApi(kc, { readTimeoutMs })).toThrow(`createKubeApi: readTimeoutMs must be a whole number of milliseconds from 1 to 2147483647, got ${readTimeoutMs}`);
    }
  });
});

describe('createKubeApi with TLS settings that cannot work', () => {
  const certs = makeTestCertificates();
  const marks = { taint: { key: 'spot', value: 'true', effect: 'NoSchedule' as const }, label: { key: 'drained', value: 'yes' } };

  it.each([
    ['a CA that did not issue the certificate', { ca: rootCertificates[0]! }, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['a server name the certificate is not for', { ca: certs.ca.cert, tlsServerName: 'api.elsewhere.example' }, 'ERR_TLS_CERT_ALTNAME_INVALID'],
  ])('fails a read and a write at once with FAILED_PRECONDITION naming the certificate problem, for a kubeconfig with %s', async (_, tls, problem) => {
    const server = await startTlsServer(cleanups, certs.server);
    const api = createKubeApi(server.kubeConfig(tls));
    cleanups.push(() => api.close());
    const retry = retryWithin(cleanups, 5_000);

    // A read through the generated client, and a write through kubeWriter, each retried while transient.
    const read = await rejectionOf(findNode(api, { name: 'n1' }, retry), PluginError);
    const run = { ...retry, dryRun: false, logger: jsonLogger({ service: 'test', level: 'silent' }) };
    const write = await rejectionOf(cordonNode(api, { metadata: { name: 'n1' } }, marks, run), PluginError);

    for (const [err, doing] of [[read, 'looking up node "n1"'], [write, 'cordoning node "n1"']] as const) {
      expect(err.code).toBe(Code.FailedPrecondition);
      expect(err.message).toMatch(new RegExp(`^${doing}: cannot trust the Kubernetes API server's certificate \\(${problem}: .+\\): check the kubeconfig's server and certificate-authority$`));
    }
    // One try each, not retries until the deadline.
    expect(server.connections()).toBe(2);
  });
});
