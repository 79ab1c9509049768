import { jsonLogger } from '@hollowtrees/grpcplugin';
import type { KubeApiServer, KubePod } from '@hollowtrees/testkit';
import { describe, expect, it } from 'vitest';
import type { KubeApi } from './kube-api.js';
import { PodCache } from './pod-cache.js';
import { MIRROR_ANNOTATION, planEviction, podKey } from './pod-filter.js';
import { cleanupsAfterEach, held, startStandIn } from './test-support/kube.js';

const cleanups = cleanupsAfterEach();

const warnings: string[] = [];
const logger = { ...jsonLogger({ service: 'test', level: 'silent' }), warn: (message: string) => void warnings.push(message) };

async function start(options: { watchHistory?: number; quietMs?: number } = {}): Promise<{ kube: KubeApiServer; api: KubeApi; cache: PodCache }> {
  const { quietMs, ...standIn } = options;
  const { kube, api } = await startStandIn(cleanups, { msPerGraceSecond: 1, ...standIn });
  kube.cluster.addNode({ metadata: { name: 'n1' } });
  kube.cluster.addNode({ metadata: { name: 'n2' } });
  const cache = new PodCache(api, { logger, backoff: () => 20, ...(quietMs !== undefined && { quietMs }) });
  cleanups.push(() => cache.stop());
  return { kube, api, cache };
}

const pod = (name: string, node: string) => ({ metadata: { name, uid: `uid-${name}` }, spec: { nodeName: node } });
const namesOn = (cache: PodCache, node: string): string[] => cache.podsOn(node).map((p) => p.metadata?.name ?? '').sort();

describe('PodCache', () => {
  it('lists the cluster once in pages, then follows it by watch: pods by node, and a wait that ends on DELETED', async () => {
    const { kube, cache } = await start();
    for (let i = 0; i < 600; i++) kube.cluster.addPod(pod(`p${i}`, i % 2 ? 'n1' : 'n2'));
    expect(await cache.whenSynced(5_000)).toBe(true);
    expect(cache.podsOn('n1')).toHaveLength(300);
    // Two pages of 500, one watch; no list per node.
    const lists = (): Array<[string, string | undefined]> => kube.requests.filter((r) => r.path === '/api/v1/pods').map((r) => [r.query.watch ?? 'list', r.query.fieldSelector]);
    await expect.poll(lists).toEqual([
      ['list', undefined],
      ['list', undefined],
      ['true', undefined],
    ]);

    kube.cluster.addPod(pod('late', 'n1'));
    await expect.poll(() => namesOn(cache, 'n1').includes('late')).toBe(true);
    const waiting = cache.waitGone(['uid-late', 'uid-p1'], new AbortController().signal);
    kube.cluster.deletePod('default', 'late', 0);
    kube.cluster.deletePod('default', 'p1', 0);
    expect(await waiting).toEqual([]);
    expect(namesOn(cache, 'n1')).not.toContain('late');
    // An abort ends the wait with what is left.
    const controller = new AbortController();
    const stillThere = cache.waitGone(['uid-p3'], controller.signal);
    controller.abort();
    expect(await stillThere).toEqual(['uid-p3']);
  });

  it('lists again from the first page, at once, when a later page\'s continue token expired (410 Gone): every pod once, no failure logged', async () => {
    const { kube, cache } = await start();
    for (let i = 0; i < 501; i++) kube.cluster.addPod(pod(`p${i}`, 'n1'));
    warnings.length = 0;
    kube.failNext(1, { code: 410, path: /^\/api\/v1\/pods$/, query: /(^|&)continue=/ });
    expect(await cache.whenSynced(5_000)).toBe(true);
    expect(cache.podsOn('n1')).toHaveLength(501);
    expect(warnings).toEqual([]);
  });

  it('never follows a continue token an earlier page of the same list gave: that list is given up (logged) and listed again', async () => {
    const { kube, cache } = await start();
    for (let i = 0; i < 501; i++) kube.cluster.addPod(pod(`p${i}`, 'n1'));
    warnings.length = 0;
    kube.failNext(4, { effect: 'repeat-continue', path: /^\/api\/v1\/pods$/, query: /(^|&)limit=/ });
    expect(await cache.whenSynced(5_000)).toBe(true);
    expect(cache.podsOn('n1')).toHaveLength(501);
    // Each list: its first page, then the continue tokens it followed, none twice.
    const listed = kube.requests.filter((r) => r.path === '/api/v1/pods' && r.query.watch === undefined);
    const lists = listed.reduce<string[][]>((all, r) => (r.query.continue === undefined ? [...all, []] : (all.at(-1)!.push(r.query.continue), all)), []);
    for (const tokens of lists) expect(new Set(tokens).size).toBe(tokens.length);
    expect(lists).toHaveLength(3);
    expect(warnings.filter((w) => w.startsWith('the pod cache lost its watch or list'))).toHaveLength(2);
  });

  it('resumes a dropped watch where it was, and lists again when the server no longer has that version (410)', async () => {
    const { kube, cache } = await start({ watchHistory: 5 });
    kube.cluster.addPod(pod('a', 'n1'));
    expect(await cache.whenSynced(5_000)).toBe(true);
    const waiting = cache.waitGone(['uid-a'], new AbortController().signal);

    // A blip: the watch resumes from its version and misses nothing.
    kube.dropConnections();
    kube.cluster.addPod(pod('b', 'n1'));
    await expect.poll(() => namesOn(cache, 'n1'), { timeout: 5_000 }).toEqual(['a', 'b']);

    // A longer outage: more changes than the server keeps, so the resumed watch gets 410 and the cache lists again.
    kube.dropConnections();
    for (let i = 0; i < 20; i++) kube.cluster.addPod(pod(`c${i}`, 'n2'));
    kube.cluster.deletePod('default', 'a', 0);
    await expect.poll(() => cache.podsOn('n2').length, { timeout: 5_000 }).toBe(20);
    expect(namesOn(cache, 'n1')).toEqual(['b']);
    // The pod deleted while nobody watched is found gone by the new list.
    expect(await waiting).toEqual([]);
    const lists = kube.requests.filter((r) => r.path === '/api/v1/pods' && r.query.watch === undefined);
    expect(lists).toHaveLength(2);
    expect(warnings).toContain('the pod cache lost its watch or list: trying again (drains meanwhile use what it has, or ask the API server)');
  });

  it('a watch whose connection went silent on the way is started again once quiet for quietMs, from the version it had: the pod deleted meanwhile ends its wait, and nothing is listed again', async () => {
    const { kube, cache } = await start({ quietMs: 300 });
    kube.cluster.addPod(pod('a', 'n1'));
    expect(await cache.whenSynced(5_000)).toBe(true);
    await expect.poll(() => kube.requests.filter((r) => r.path === '/api/v1/pods' && r.query.watch === 'true').length).toBe(1);
    const waiting = cache.waitGone(['uid-a'], new AbortController().signal);
    const warned = warnings.length;
    kube.silenceOpenWatches();
    kube.cluster.deletePod('default', 'a', 0);
    kube.cluster.addPod(pod('b', 'n1'));
    // Without the restart, the silent watch would hold the cache as it was until the kernel gave up on the connection.
    await expect.poll(() => namesOn(cache, 'n1'), { timeout: 10_000 }).toEqual(['b']);
    expect(await waiting).toEqual([]);
    expect(kube.requests.filter((r) => r.path === '/api/v1/pods' && r.query.watch === undefined)).toHaveLength(1);
    // A quiet watch is routine: no warning.
    expect(warnings.slice(warned)).toEqual([]);
  });

  it('an API server slower to open a watch than quietMs still gets it open: the wait for quiet starts once it is', async () => {
    const { kube, cache } = await start({ quietMs: 200 });
    kube.latency.set(400);
    expect(await cache.whenSynced(5_000)).toBe(true);
    kube.cluster.addPod(pod('late', 'n1'));
    await expect.poll(() => namesOn(cache, 'n1'), { timeout: 10_000 }).toEqual(['late']);
  });

  it('a watch whose request is never answered (its connection dropped on the way before the watch opened) is given up and asked for again: the cache does not stay stale for good', async () => {
    const { kube, cache } = await start({ quietMs: 200 });
    kube.cluster.addPod(pod('a', 'n1'));
    const gate = held(cleanups);
    const fault = kube.failNext(1, { effect: 'delay', until: gate.until, path: /^\/api\/v1\/pods$/, query: /(^|&)watch=/ });
    expect(await cache.whenSynced(5_000)).toBe(true);
    await expect.poll(() => fault.hits).toBe(1);
    const waiting = cache.waitGone(['uid-a'], AbortSignal.timeout(8_000));
    kube.cluster.deletePod('default', 'a', 0);
    kube.cluster.addPod(pod('b', 'n1'));
    // Without a bound on the watch's opening, the cache holds 'a' (and never sees 'b') until the process restarts.
    await expect.poll(() => namesOn(cache, 'n1'), { timeout: 6_000 }).toEqual(['b']);
    expect(await waiting).toEqual([]);
  });

  it('a wait ends with the pods still there when its signal aborts; a relist that still has a pod does not end its wait', async () => {
    const { kube, cache } = await start({ watchHistory: 5 });
    kube.cluster.addPod(pod('a', 'n1'));
    kube.cluster.addPod(pod('b', 'n1'));
    expect(await cache.whenSynced(5_000)).toBe(true);
    const aborted = AbortSignal.abort();
    expect(await cache.waitGone(['uid-a', 'uid-unknown'], aborted)).toEqual(['uid-a']);

    const stop = new AbortController();
    let ended = false;
    const waiting = cache.waitGone(['uid-a', 'uid-b'], stop.signal).finally(() => (ended = true));
    // An outage long enough for a relist (410), during which b goes and a stays.
    kube.dropConnections();
    for (let i = 0; i < 20; i++) kube.cluster.addPod(pod(`c${i}`, 'n2'));
    kube.cluster.deletePod('default', 'b', 0);
    await expect.poll(() => cache.podsOn('n2').length, { timeout: 5_000 }).toBe(20);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(ended).toBe(false);
    stop.abort();
    expect(await waiting).toEqual(['uid-a']);
  });

  it('keeps of each pod exactly what a drain reads: the eviction plan from the cache is the plan from the API server', async () => {
    const { kube, api, cache } = await start();
    const rs = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'rs-web', controller: true };
    const ds = { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'proxy', uid: 'ds-proxy', controller: true };
    const notController = { apiVersion: 'v1', kind: 'ConfigMap', name: 'cm', uid: 'cm-1' };
    const pods: KubePod[] = [
      // Lots a drain does not read (labels, other annotations, containers, a configMap volume), plus what it does.
      { metadata: { name: 'web', namespace: 'shop', uid: 'u-web', labels: { app: 'web' }, annotations: { note: 'x'.repeat(500) }, ownerReferences: [notController, rs] }, spec: { nodeName: 'n1', terminationGracePeriodSeconds: 45, containers: [{ name: 'c', image: 'web:1' }], volumes: [{ name: 'cfg', configMap: { name: 'cm' } }] }, status: { phase: 'Running' } },
      { metadata: { name: 'mirror', namespace: 'kube-system', uid: 'u-mirror', annotations: { [MIRROR_ANNOTATION]: 'abc', other: 'y' } }, spec: { nodeName: 'n1' } },
      { metadata: { name: 'proxy', namespace: 'kube-system', uid: 'u-proxy', ownerReferences: [ds] }, spec: { nodeName: 'n1' } },
      { metadata: { name: 'cache', namespace: 'shop', uid: 'u-cache', ownerReferences: [rs] }, spec: { nodeName: 'n1', volumes: [{ name: 'scratch', emptyDir: { medium: 'Memory' } }, { name: 'cfg', configMap: { name: 'cm' } }] } },
      { metadata: { name: 'done', namespace: 'jobs', uid: 'u-done' }, spec: { nodeName: 'n1' }, status: { phase: 'Succeeded' } },
      { metadata: { name: 'bare', namespace: 'shop', uid: 'u-bare' }, spec: { nodeName: 'n1' } },
    ];
    for (const p of pods) kube.cluster.addPod(p);
    expect(await cache.whenSynced(5_000)).toBe(true);
    const cached = cache.podsOn('n1');
    const listed = (await api.listPodPage(undefined)).items.filter((p) => p.spec?.nodeName === 'n1');
    const plan = (from: typeof cached, deleteEmptyDirData: boolean) => {
      const p = planEviction([...from].sort((a, b) => podKey(a).localeCompare(podKey(b))), { deleteEmptyDirData });
      return { evict: p.evict.map(podKey), terminating: p.terminating.map(podKey), skipped: p.skipped.map((s) => `${podKey(s.pod)}: ${s.reason}`) };
    };
    // Every kind of pod the filter tells apart is here: skipped as a mirror, a DaemonSet's, or with emptyDir data.
    expect(plan(listed, false)).toEqual({ evict: ['jobs/done', 'shop/bare', 'shop/web'], terminating: [], skipped: ['kube-system/mirror: mirror', 'kube-system/proxy: daemonset', 'shop/cache: emptydir'] });
    expect(plan(listed, true).evict).toEqual(['jobs/done', 'shop/bare', 'shop/cache', 'shop/web']);
    for (const deleteEmptyDirData of [false, true]) expect(plan(cached, deleteEmptyDirData)).toEqual(plan(listed, deleteEmptyDirData));
    // The kept fields, and nothing else.
    const web = cached.find((p) => p.metadata?.name === 'web')!;
    expect(web).toEqual({
      metadata: { name: 'web', namespace: 'shop', uid: 'u-web', resourceVersion: expect.any(String), deletionTimestamp: undefined, ownerReferences: [rs] },
      spec: { containers: [], nodeName: 'n1', terminationGracePeriodSeconds: 45, volumes: [] },
      status: { phase: 'Running' },
    });
    expect(cached.find((p) => p.metadata?.name === 'mirror')!.metadata?.annotations).toEqual({ [MIRROR_ANNOTATION]: 'abc' });
    expect(cached.find((p) => p.metadata?.name === 'cache')!.spec?.volumes).toEqual([{ name: 'scratch', emptyDir: {} }]);
  });
});
