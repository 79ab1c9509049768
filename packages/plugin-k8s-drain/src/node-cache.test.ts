import { jsonLogger } from '@hollowtrees/grpcplugin';
import { describe, expect, it, vi } from 'vitest';
import { NodeCache } from './node-cache.js';
import { cleanupsAfterEach, startStandIn } from './test-support/kube.js';

const cleanups = cleanupsAfterEach();

describe('NodeCache', () => {
  it('remembers the nodes its watch saw deleted, by instance and by name, and finds a reused name only for its own instance', async () => {
    const { kube, api } = await startStandIn(cleanups);
    kube.cluster.addNode({ metadata: { name: 'ip-10-0-0-1' }, spec: { providerID: 'aws:///eu-west-1a/i-0old' } });
    const cache = new NodeCache(api, { logger: jsonLogger({ service: 'test', level: 'silent' }), backoff: () => 20 });
    cleanups.push(() => cache.stop());
    cache.start();
    expect(await cache.whenSynced(5_000)).toBe(true);
    expect(cache.sawDeleted({ instanceId: 'i-0old' })).toBe(false);
    // A node added once the list has landed, seen: the watch is open (the stand-in replays no deletion from before it).
    kube.cluster.addNode({ metadata: { name: 'marker' } });
    await vi.waitFor(() => expect(cache.find({ name: 'marker' })).toBeDefined(), { timeout: 5_000, interval: 10 });

    // The instance is reclaimed, its node deleted; a new instance comes back at the same address, under the same name.
    kube.cluster.deleteNode('ip-10-0-0-1');
    await vi.waitFor(() => expect(cache.sawDeleted({ name: 'ip-10-0-0-1' })).toBe(true), { timeout: 5_000, interval: 10 });
    expect(cache.sawDeleted({ instanceId: 'i-0old' })).toBe(true);
    kube.cluster.addNode({ metadata: { name: 'ip-10-0-0-1' }, spec: { providerID: 'aws:///eu-west-1a/i-0new' } });
    await vi.waitFor(() => expect(cache.find({ name: 'ip-10-0-0-1' })).toBeDefined(), { timeout: 5_000, interval: 10 });

    expect(cache.sawDeleted({ name: 'ip-10-0-0-1' })).toBe(false);
    expect(cache.sawDeleted({ name: 'ip-10-0-0-1', instanceId: 'i-0old' })).toBe(true);
    expect(cache.find({ name: 'ip-10-0-0-1', instanceId: 'i-0old' })).toBeUndefined();
    expect(cache.find({ name: 'ip-10-0-0-1', instanceId: 'i-0new' })?.spec?.providerID).toBe('aws:///eu-west-1a/i-0new');
  });
});
