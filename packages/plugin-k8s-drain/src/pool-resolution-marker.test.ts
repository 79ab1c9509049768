import { describe, expect, it } from 'vitest';
import { markerLeaseName, POOL_RESOLVED_ANNOTATION, PoolResolutionMarker } from './pool-resolution-marker.js';
import { cleanupsAfterEach, retryWithin, startStandIn } from './test-support/kube.js';

const cleanups = cleanupsAfterEach();
const POOL = 'eu-west-1a/m5.large';
const T = Date.parse('2026-11-30T02:00:00Z');

async function start() {
  const { kube, api } = await startStandIn(cleanups);
  const retry = retryWithin(cleanups, 5_000);
  return { kube, retry, marker: (dryRun = false) => new PoolResolutionMarker(api, 'hollowtrees', dryRun) };
}

describe('PoolResolutionMarker', () => {
  it('records the latest resolution of a pool in one Lease: a later one moves it, an older one leaves it', async () => {
    const { kube, retry, marker } = await start();
    const one = marker();
    expect(await one.resolvedAt(POOL, retry)).toBeUndefined();
    await one.record(POOL, T, retry);
    // Another plugin process reads it.
    expect(await marker().resolvedAt(POOL, retry)).toBe(T);
    await marker().record(POOL, T + 60_000, retry);
    await one.record(POOL, T + 30_000, retry);
    expect(await one.resolvedAt(POOL, retry)).toBe(T + 60_000);
    expect(await one.resolvedAt('eu-west-1b/m5.large', retry)).toBeUndefined();
    const leases = kube.cluster.leases.all();
    expect(leases.map((l) => [l.metadata.namespace, l.metadata.name, l.metadata.labels])).toEqual([
      ['hollowtrees', markerLeaseName(POOL), { 'app.kubernetes.io/managed-by': 'hollowtrees-k8s-drain', 'hollowtrees.io/role': 'pool-resolution' }],
    ]);
    // The annotation's name is what plugin processes of two versions share: spelled out, not taken from the code under test.
    expect(leases[0]?.metadata.annotations).toEqual({ 'hollowtrees.io/pool-resolved': JSON.stringify({ pool: POOL, resolvedAt: new Date(T + 60_000).toISOString() }) });
    expect(markerLeaseName(POOL)).toMatch(/^hollowtrees-pool-[0-9a-f]{32}$/);
  });

  it('two processes recording at once both land: the write that lost the race (409) reads again, and the later time stays', async () => {
    const { kube, retry, marker } = await start();
    await marker().record(POOL, T, retry);
    // The first update of each is refused as stale, as when another process's write came between its read and its write.
    kube.failNext(2, { code: 409, method: 'PUT' });
    await Promise.all([marker().record(POOL, T + 60_000, retry), marker().record(POOL, T + 120_000, retry)]);
    expect(await marker().resolvedAt(POOL, retry)).toBe(T + 120_000);
    // Two first resolutions at once: one creates the Lease, the other's create meets it (409 AlreadyExists) and updates it.
    await Promise.all([marker().record('b', T + 60_000, retry), marker().record('b', T, retry)]);
    expect(await marker().resolvedAt('b', retry)).toBe(T + 60_000);
  });

  it('a refused read or write (the Role missing after an upgrade) says which Role pool mode needs, and where', async () => {
    const { kube, retry, marker } = await start();
    kube.failNext(2, { code: 403, path: /\/leases/ });
    for (const call of [marker().resolvedAt(POOL, retry), marker().record(POOL, T, retry)]) {
      await expect(call).rejects.toThrow(/\(Lease hollowtrees\/hollowtrees-pool-[0-9a-f]{32}\): .*; pool mode needs get, create and update on coordination\.k8s\.io leases in namespace hollowtrees \(the Role hollowtrees-k8s-drain-pools, deploy\/kubernetes\/base\/k8s-drain-rbac\.yaml\)$/);
    }
    // Any other refusal is not blamed on the Role.
    kube.failNext(2, { code: 400, path: /\/leases/ });
    for (const call of [marker().resolvedAt(POOL, retry), marker().record(POOL, T, retry)]) {
      await expect(call).rejects.toThrow(/\(Lease hollowtrees\/hollowtrees-pool-[0-9a-f]{32}\): (?!.*pool mode needs)/);
    }
  });

  it('reads no resolution from a Lease whose annotation is not one it wrote, or names another pool; writes nothing in dry-run', async () => {
    const { kube, retry, marker } = await start();
    await marker(true).record(POOL, T, retry);
    expect(kube.cluster.leases.all()).toEqual([]);
    for (const text of ['not json', JSON.stringify({ pool: 'other', resolvedAt: new Date(T).toISOString() }), JSON.stringify({ pool: POOL, resolvedAt: 'soon' })]) {
      const name = markerLeaseName(POOL);
      const current = kube.cluster.leases.all()[0];
      const body = { metadata: { name, ...(current ? { resourceVersion: current.metadata.resourceVersion } : {}), annotations: { [POOL_RESOLVED_ANNOTATION]: text } } };
      kube.cluster.leases.replace('hollowtrees', name, body);
      expect(await marker().resolvedAt(POOL, retry)).toBeUndefined();
    }
    // Such a Lease is taken over by the next resolution.
    await marker().record(POOL, T, retry);
    expect(await marker().resolvedAt(POOL, retry)).toBe(T);
  });
});
