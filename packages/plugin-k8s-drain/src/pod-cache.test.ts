import { jsonLogger } from '@hollowtrees/grpcplugin';
import { startKubeApiServer, type KubeApiServer } from '@hollowtrees/testkit';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { createKubeApi, type KubeApi } from './kube-api.js';
import { PodCache } from './pod-cache.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const warnings: string[] = [];
const logger = { ...jsonLogger({ service: 'test', level: 'silent' }), warn: (message: string) => void warnings.push(message) };

async function start(options: { watchHistory?: number } = {}): Promise<{ kube: KubeApiServer; api: KubeApi; cache: PodCache }> {
  const kube = await startKubeApiServer({ msPerGraceSecond: 1, ...options });
  cleanups.push(() => kube.close());
  kube.cluster.addNode({ metadata: { name: 'n1' } });
  kube.cluster.addNode({ metadata: { name: 'n2' } });
  const kc = new KubeConfig();
  kc.loadFromOptions(kube.kubeConfigOptions());
  const api = createKubeApi(kc);
  const cache = new PodCache(api, { logger, backoff: () => 20 });
  cleanups.push(() => {
    cache.stop();
    api.close();
  });
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
  });
});
