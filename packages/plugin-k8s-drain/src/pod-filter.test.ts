import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { planEviction, podKey } from './pod-filter.js';

const pod = (name: string, extra: Partial<V1Pod['metadata']> = {}): V1Pod => ({
  metadata: { name, namespace: 'apps', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'rs', controller: true }], ...extra },
  spec: { containers: [] },
});

describe('planEviction', () => {
  it('waits for a pod already terminating instead of evicting it again', () => {
    const going = pod('web-0', { deletionTimestamp: new Date() });
    const plan = planEviction([going, pod('web-1')], { deleteEmptyDirData: true });
    expect(plan.terminating.map(podKey)).toEqual(['apps/web-0']);
    expect(plan.evict.map(podKey)).toEqual(['apps/web-1']);
  });

  it('never evicts its own pod: the same name in another namespace is evicted', () => {
    const plan = planEviction([pod('hollowtrees-7d9f'), pod('hollowtrees-7d9f', { namespace: 'hollowtrees' }), pod('web-0')], { deleteEmptyDirData: true, ownPod: { namespace: 'hollowtrees', name: 'hollowtrees-7d9f' } });
    expect(plan.skipped.map(({ pod: p, reason }) => [podKey(p), reason])).toEqual([['hollowtrees/hollowtrees-7d9f', 'own pod']]);
    expect(plan.evict.map(podKey)).toEqual(['apps/hollowtrees-7d9f', 'apps/web-0']);
  });
});
